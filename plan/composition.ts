/** A composition (CONTRACT §6), TOML or JSON, parsed and checked for shape; see resolve-composition.ts for the rest. */
import { z } from 'zod';
import { parseByteSize } from './units.ts';
import { ValidationError } from '../core/errors.ts';
import { describeJsonSyntaxError } from './json-error-position.ts';
import {
  describeValue,
  parseTomlDocument,
  problemsFromZod,
  strictTable,
  throwIfProblems,
} from './problems.ts';

export const severalRunsMessage =
  'several [[runs]] in one composition are not supported yet; submit one composition per run';

// ---------------------------------------------------------------------------------------------------------
// Schema (CONTRACT §6)
// ---------------------------------------------------------------------------------------------------------

/** Users write `count = 3` or `enabled = true`; instances always receive strings, so values are carried as such. */
const testParamsSchema = z.record(
  z.string().min(1),
  z
    .union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean' })
    .transform((value) => String(value)),
);

const configSchema = z.record(z.string(), z.unknown());

const instancesSchema = strictTable({
  count: z.int().min(1).optional(),
  percentage: z
    .number()
    .gt(0)
    .lte(1, {
      error: (issue) =>
        `percentage is a fraction of total_instances between 0 and 1, like 0.25 for a quarter; got ${describeValue(issue.input)}`,
    })
    .optional(),
}).superRefine((instances, ctx) => {
  const hasCount = instances.count !== undefined;
  if (hasCount === (instances.percentage !== undefined)) {
    ctx.addIssue({
      code: 'custom',
      message: hasCount
        ? 'set count or percentage, not both'
        : 'set either count (a number of instances) or percentage (a fraction of total_instances, like 0.25)',
    });
  }
});

const resourcesSchema = strictTable({
  memory: z
    .union([z.string(), z.number()], { error: 'expected a byte size, like "512MiB"' })
    .superRefine((memory, ctx) => {
      try {
        parseByteSize(memory, 'memory');
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.details[0]?.message ?? err.message });
      }
    })
    .optional(),
  // The Go composition carried cpu as a string ("0.5"); both spellings mean a number of CPUs.
  cpu: z
    .union([z.number(), z.string()], { error: 'expected a number of CPUs, like 0.5 or 2' })
    .superRefine((cpu, ctx) => {
      if (parseCpus(cpu) === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `expected a positive number of CPUs, like 0.5 or 2, got ${describeValue(cpu)}`,
        });
      }
    })
    .optional(),
});

const runSectionSchema = strictTable({ test_params: testParamsSchema.optional() });

const groupSchema = strictTable({
  id: z.string(),
  builder: z.string().min(1).optional(),
  build_config: configSchema.optional(),
  resources: resourcesSchema.optional(),
  instances: instancesSchema.optional(),
  run: runSectionSchema.optional(),
});

const globalSchema = strictTable({
  plan: z.string().min(1),
  case: z.string().min(1),
  builder: z.string().min(1).optional(),
  runner: z.string().min(1).optional(),
  total_instances: z.int().min(1).optional(),
  build_config: configSchema.optional(),
  run_config: configSchema.optional(),
  run: runSectionSchema.optional(),
  disable_metrics: z.boolean().optional(),
});

const runGroupSchema = strictTable({
  id: z.string(),
  group_id: z.string().min(1).optional(),
  instances: instancesSchema.optional(),
  test_params: testParamsSchema.optional(),
});

const runSchema = strictTable({
  id: z.string().min(1),
  total_instances: z.int().min(1).optional(),
  test_params: testParamsSchema.optional(),
  groups: z.array(runGroupSchema).min(1),
});

const compositionSchema = strictTable({
  metadata: strictTable({ name: z.string().optional(), author: z.string().optional() }).optional(),
  global: globalSchema,
  groups: z.array(groupSchema).min(1, { error: 'declare at least one [[groups]] table' }),
  runs: z.array(runSchema).max(1, { error: severalRunsMessage }).optional(),
});

export type Composition = z.infer<typeof compositionSchema>;
export type CompositionGroup = z.infer<typeof groupSchema>;
export type CompositionInstances = z.infer<typeof instancesSchema>;

// ---------------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------------

/**
 * Parses a composition, TOML or JSON (JSON when the first non-blank character is `{`), and checks its
 * shape. Unknown keys are rejected with the list of keys accepted there. Checks that need the plan's
 * manifest happen in `resolveComposition`.
 *
 * @throws ValidationError listing every problem, with paths like `groups[1].instances`; a syntax error
 *   names its line and column.
 */
export function parseComposition(text: string): Composition {
  const raw = text.trimStart().startsWith('{')
    ? parseJsonDocument(text)
    : parseTomlDocument(text, 'composition', 'composition');
  return validateComposition(raw);
}

function validateComposition(raw: unknown): Composition {
  const result = compositionSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  throwIfProblems(problemsFromZod(result.error, ''), 'composition');
  throw new Error('unreachable: zod failed without issues');
}

function parseJsonDocument(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    const message = `not valid JSON: ${describeJsonSyntaxError(text, err)}`;
    throw new ValidationError(`composition is ${message}`, [{ path: 'composition', message }]);
  }
}

/** A number of CPUs, as a number or as text (`"0.5"`); undefined unless it is positive. */
export function parseCpus(value: number | string): number | undefined {
  const cpus =
    typeof value === 'number' ? value : /^\s*\d*\.?\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  return Number.isFinite(cpus) && cpus > 0 ? cpus : undefined;
}
