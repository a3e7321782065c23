import type { NextFunction, Request, Response } from 'express';
import type { Cluster, Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Logger } from '../observability/logger.ts';
import { HttpError } from './http-error.ts';

/** How long a limiter may wait for Redis before the request goes through unlimited. */
const REDIS_WAIT_MS = 250;

/**
 * Requests per second per API key, and failed authentications per client address, counted in Redis so
 * the limit holds across API processes (`API_RATE_LIMIT`, 0 = off). Fails open: when Redis does not
 * answer in time the request goes through, and that is logged (at most once a minute).
 */
export class ApiRateLimits {
  private readonly perKey: RateLimiterRedis | null;
  private readonly failedAuth: RateLimiterRedis | null;
  private warnedAt = 0;

  constructor(
    redis: Redis | Cluster,
    prefix: string,
    private readonly perSecond: number,
    private readonly logger: Logger,
  ) {
    // One key per limiter and caller, changed by a single-key Lua script; on a cluster the first hash
    // tag counts, the prefix's (`{fm}:{api-limit}:…`), so these keys sit with the queue's.
    const make = (name: string) =>
      new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: `${prefix}:{api-limit}:${name}`,
        points: perSecond,
        duration: 1,
      });
    this.perKey = perSecond > 0 ? make('key') : null;
    this.failedAuth = perSecond > 0 ? make('auth-failed') : null;
  }

  /** Counts a request of the key; throws 429 beyond the limit. */
  async request(apiKeyId: string): Promise<void> {
    await this.consume(this.perKey, apiKeyId);
  }

  /** Throws 429 when the address has failed authentication too often in the last second. */
  async checkAddress(address: string): Promise<void> {
    if (!this.failedAuth) return;
    const used = await this.guarded(this.failedAuth.get(address));
    if (used instanceof RateLimiterRes && used.consumedPoints >= this.perSecond) throw tooMany(used);
  }

  /** Counts a failed authentication of the address. */
  async failed(address: string): Promise<void> {
    await this.consume(this.failedAuth, address).catch(() => undefined);
  }

  private async consume(limiter: RateLimiterRedis | null, key: string): Promise<void> {
    if (!limiter) return;
    // consume() rejects with a RateLimiterRes when the key is over its limit, with an Error when Redis fails.
    const limited = limiter.consume(key).then(
      () => null,
      (rejection: unknown) => (rejection instanceof RateLimiterRes ? rejection : Promise.reject(rejection)),
    );
    const result = await this.guarded(limited);
    if (result) throw tooMany(result);
  }

  /** The limiter's answer, or undefined when Redis failed or was too slow (the request then goes through). */
  private async guarded<T>(answer: Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), REDIS_WAIT_MS)));
    const result = await Promise.race([answer.catch((error: unknown) => error), timeout]).finally(() =>
      clearTimeout(timer),
    );
    if (result === 'timeout' || result instanceof Error) {
      const now = Date.now();
      if (now - this.warnedAt > 60_000) {
        this.warnedAt = now;
        this.logger.warn('rate limiter unavailable; requests are not limited', {
          error: result === 'timeout' ? 'timeout' : result.message,
        });
      }
      return undefined;
    }
    return result as T;
  }
}

const tooMany = (result: RateLimiterRes) =>
  new HttpError(
    429,
    'too many requests',
    {},
    { 'retry-after': String(Math.max(1, Math.ceil(result.msBeforeNext / 1000))) },
  );

/** Express handler form of {@link ApiRateLimits.checkAddress}, for routes before authentication. */
export const limitAddress =
  (limits: ApiRateLimits) => async (request: Request, _response: Response, next: NextFunction) => {
    await limits.checkAddress(request.ip ?? 'unknown');
    next();
  };
