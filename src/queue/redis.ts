import { Redis } from 'ioredis';

/** Opens an ioredis connection suitable for BullMQ (blocking commands need `maxRetriesPerRequest: null`). */
export function createRedis(url: string, options: { lazyConnect?: boolean } = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    lazyConnect: options.lazyConnect ?? false,
  });
}

export { Redis };
