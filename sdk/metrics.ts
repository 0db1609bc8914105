/**
 * `runenv.metrics`: counters, gauges, histograms and timers a plan records, one line per observation in
 * `$TEST_OUTPUTS_PATH/metrics.out` (core/contract/metrics.ts has the format, docs/metrics.md describes it).
 * The daemon summarises every instance's file per group when the run ends.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { encodeMetricLine, metricsFileName, type MetricType } from '../core/contract/metrics.ts';

/** Options of {@link Metrics}. */
export interface MetricsOptions {
  /** Directory that receives `metrics.out`; created when missing. */
  outputsPath: string;
  /** Unix time in nanoseconds; default the wall clock at microsecond precision. */
  clock?: () => bigint;
  /** Milliseconds from an arbitrary origin, for {@link Metrics.time}; default `performance.now`. */
  monotonicMs?: () => number;
}

/** A running total; its summary takes each instance's final total. */
export interface Counter {
  /** Adds `by` (default 1) and records the new total. */
  inc(by?: number): void;
  readonly value: number;
}

/** A value that goes up and down; every value set is recorded. */
export interface Gauge {
  set(value: number): void;
  readonly value: number;
}

/** A distribution: every recorded value is kept, and the summary gives its percentiles. */
export interface Histogram {
  record(value: number): void;
}

/**
 * Records a plan's measurements. Each observation is appended synchronously, like the events in `run.out`,
 * so that it is on disk even when the process exits right after.
 */
export class Metrics {
  private readonly file: string;
  private readonly outputsPath: string;
  private readonly clock: () => bigint;
  private readonly monotonicMs: () => number;
  private readonly declared = new Map<string, { type: MetricType; unit?: string }>();
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private outputsDirReady = false;

  constructor(options: MetricsOptions) {
    this.outputsPath = options.outputsPath;
    this.file = path.join(options.outputsPath, metricsFileName);
    this.clock = options.clock ?? wallClockNs;
    this.monotonicMs = options.monotonicMs ?? (() => performance.now());
  }

  /** The counter `name`; asking again for the same name returns the same counter. */
  counter(name: string, unit?: string): Counter {
    this.declare(name, 'counter', unit);
    const known = this.counters.get(name);
    if (known) return known;
    let total = 0;
    const counter: Counter = {
      inc: (by = 1) => {
        this.check(name, by);
        total += by;
        this.write('counter', name, total, unit);
      },
      get value() {
        return total;
      },
    };
    this.counters.set(name, counter);
    return counter;
  }

  /** The gauge `name`; asking again for the same name returns the same gauge. */
  gauge(name: string, unit?: string): Gauge {
    this.declare(name, 'gauge', unit);
    const known = this.gauges.get(name);
    if (known) return known;
    let current = 0;
    const gauge: Gauge = {
      set: (value) => {
        this.check(name, value);
        current = value;
        this.write('gauge', name, value, unit);
      },
      get value() {
        return current;
      },
    };
    this.gauges.set(name, gauge);
    return gauge;
  }

  /** The histogram `name`. */
  histogram(name: string, unit?: string): Histogram {
    this.declare(name, 'histogram', unit);
    return {
      record: (value) => {
        this.check(name, value);
        this.write('histogram', name, value, unit);
      },
    };
  }

  /**
   * Runs `fn` and records how long it took, in milliseconds, in the histogram `name` (unit `ms`); the
   * duration is recorded when `fn` throws too, and the error passes on.
   */
  async time<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    const histogram = this.histogram(name, 'ms');
    const started = this.monotonicMs();
    try {
      return await fn();
    } finally {
      histogram.record(this.monotonicMs() - started);
    }
  }

  /** Records one point (the original's `RecordPoint`): a value at a time, summarised like a histogram. */
  recordPoint(name: string, value: number, unit?: string): void {
    this.declare(name, 'point', unit);
    this.check(name, value);
    this.write('point', name, value, unit);
  }

  // One name is one metric: a summary cannot mix a counter's totals with a histogram's values.
  private declare(name: string, type: MetricType, unit: string | undefined): void {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`metric name must be a non-empty string, got ${JSON.stringify(name)}`);
    }
    const known = this.declared.get(name);
    if (!known) {
      this.declared.set(name, unit === undefined ? { type } : { type, unit });
      return;
    }
    if (known.type !== type) {
      throw new TypeError(
        `metric ${JSON.stringify(name)} is a ${known.type}; it cannot also be a ${type}: give the ${type} another name`,
      );
    }
    if (unit !== undefined && known.unit !== undefined && unit !== known.unit) {
      throw new TypeError(
        `metric ${JSON.stringify(name)} is measured in ${JSON.stringify(known.unit)}, not ${JSON.stringify(unit)}: give it another name or record it in ${JSON.stringify(known.unit)}`,
      );
    }
  }

  private check(name: string, value: unknown): void {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new TypeError(
        `metric ${JSON.stringify(name)}: value must be a finite number, got ${typeof value === 'number' ? String(value) : JSON.stringify(value)}`,
      );
    }
  }

  private write(type: MetricType, name: string, value: number, unit: string | undefined): void {
    const line = `${encodeMetricLine({ ts: this.clock(), type, name, value, ...(unit === undefined ? {} : { unit }) })}\n`;
    try {
      if (!this.outputsDirReady) {
        mkdirSync(this.outputsPath, { recursive: true });
        this.outputsDirReady = true;
      }
      appendFileSync(this.file, line);
    } catch (error) {
      throw new Error(
        `cannot write metric ${JSON.stringify(name)} to ${this.file}: ${(error as Error).message}; TEST_OUTPUTS_PATH must be a writable directory`,
        { cause: error },
      );
    }
  }
}

function wallClockNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1_000)) * 1_000n;
}
