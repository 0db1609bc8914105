/**
 * The `--json` documents of the commands that do not ask the daemon (describe, plan list, version, token list). The
 * commands that do print the API's own documents (api/schemas.ts); these are their counterparts, checked
 * by the tests the same way.
 */
import { z } from 'zod';

const paramValueSchema = z.union([z.string(), z.number(), z.boolean(), z.array(z.unknown())]).nullable();

export const paramDescriptionSchema = z.object({
  name: z.string(),
  type: z.string().meta({ description: 'As the manifest writes it; "string" when it says nothing' }),
  default: paramValueSchema,
  unit: z.string().nullable(),
  desc: z.string().nullable(),
});

export const testCaseDescriptionSchema = z.object({
  name: z.string(),
  instances: z.object({ min: z.number(), max: z.number(), default: z.number() }),
  params: z.array(paramDescriptionSchema),
});

export const planDescriptionSchema = z.object({
  name: z.string(),
  dir: z.string(),
  defaults: z.object({ builder: z.string().nullable(), runner: z.string().nullable() }),
  builders: z.array(z.string()),
  runners: z.array(z.string()),
  testcases: z.array(testCaseDescriptionSchema),
});

export const planListSchema = z.object({
  plans: z.array(
    z.object({
      name: z.string(),
      dir: z.string(),
      testcases: z.array(z.string()),
    }),
  ),
});

export const versionViewSchema = z.object({
  cli: z.string(),
  daemon: z.object({
    endpoint: z.string(),
    version: z.string().nullable().meta({ description: 'null when the daemon did not answer' }),
    error: z.string().nullable(),
  }),
});

export const tokenListSchema = z.object({
  file: z.string(),
  tokens: z.array(
    z.object({
      user: z.string(),
      role: z.enum(['admin', 'user', 'viewer']),
      hash: z.string().meta({ description: 'sha256:<hex> of the token; the token itself is never stored' }),
    }),
  ),
});

export type ParamDescription = z.infer<typeof paramDescriptionSchema>;
export type PlanDescription = z.infer<typeof planDescriptionSchema>;
export type PlanListView = z.infer<typeof planListSchema>;
export type VersionView = z.infer<typeof versionViewSchema>;
export type TokenListView = z.infer<typeof tokenListSchema>;
