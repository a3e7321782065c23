import { describe, expect, it } from 'vitest';
import { WorkflowCache, estimateCompiledBytes } from '../../src/engine/workflow-cache.ts';
import { createMetrics } from '../../src/observability/metrics.ts';

const definition = (steps: number, tag = 'x') => ({
  steps: Array.from({ length: steps }, (_, i) => ({ id: `s${i}`, type: 'add_tag', config: { tag: `${tag}${i}` } })),
});
const bytesOf = (steps: number) => estimateCompiledBytes(JSON.stringify(definition(steps)).length);

// The cache used to be bounded by count: 1,000 versions of 1,000 steps were about 4 GB per process.
describe('workflow cache', () => {
  it('stays within its byte budget, evicting the least recently used version, and meters evictions', async () => {
    const metrics = createMetrics();
    const cache = new WorkflowCache({ maxBytes: 3 * bytesOf(50), metrics });
    for (const id of ['a', 'b', 'c']) cache.compile(id, definition(50));
    expect(cache.get('a')).toBeDefined(); // a is now the most recently used
    cache.compile('d', definition(50));
    expect(cache.get('b')).toBeUndefined();
    expect(['a', 'c', 'd'].every((id) => cache.get(id))).toBe(true);
    expect(cache.size).toBeLessThanOrEqual(3 * bytesOf(50));
    for (let i = 0; i < 100; i += 1) cache.compile(`v${i}`, definition(20 + (i % 40)));
    expect(cache.size).toBeLessThanOrEqual(3 * bytesOf(50));
    const evictions = await metrics.registry.getSingleMetric('flowmachine_workflow_cache_evictions_total')!.get();
    expect(evictions.values[0]!.value).toBeGreaterThan(90);
    const size = await metrics.registry.getSingleMetric('flowmachine_workflow_cache_bytes')!.get();
    expect(size.values[0]!.value).toBe(cache.size);
  });

  it('compiles a version larger than the whole budget without keeping it', () => {
    const cache = new WorkflowCache({ maxBytes: bytesOf(10) });
    cache.compile('small', definition(5));
    const big = cache.compile('big', definition(200));
    expect(big.steps.size).toBe(200);
    expect(cache.get('big')).toBeUndefined();
    expect(cache.get('small')).toBeDefined();
  });

  it('refuses a stored definition that is not valid', () => {
    expect(() => new WorkflowCache().compile('bad', { steps: [] })).toThrow(/invalid definition/);
  });
});
