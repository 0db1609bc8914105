/**
 * Test params as the original Testground treated them: every value is passed on to instances as a string.
 * What the manifest does not declare, or declares otherwise, is warned about, never refused: our SDK
 * delivers any string, and only its typed getters would refuse such a value, at run time.
 */
import type { Findings } from './findings.ts';
import type { TestCaseSpec } from './manifest.ts';
import { fitParamValue, sdkGetterFor } from './param-types.ts';
import { formatPath, listOrNone } from './problems.ts';

export class ParamResolver {
  private readonly testCase: TestCaseSpec | undefined;
  private readonly findings: Findings;

  /** @param testCase undefined when the composition names none the manifest has (reported elsewhere). */
  constructor(testCase: TestCaseSpec | undefined, findings: Findings) {
    this.testCase = testCase;
    this.findings = findings;
  }

  /** The manifest's defaults, as instances receive them (a default that does not fit was warned about when parsed). */
  defaults(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, spec] of Object.entries(this.testCase?.params ?? {})) {
      // Params with no default and no value are simply absent.
      if (spec.default !== undefined) out[name] = fitParamValue(spec, spec.default).value;
    }
    return out;
  }

  /** One level's params (global, group, run, run-group), as instances receive them. */
  level(params: Readonly<Record<string, string>> | undefined, path: string): Record<string, string> {
    const out: Record<string, string> = {};
    const testCase = this.testCase;
    // Without a known test case there is nothing to check against; that problem is reported already.
    if (params === undefined || testCase === undefined) return { ...params };
    for (const [name, value] of Object.entries(params)) {
      const paramPath = formatPath([name], path);
      const spec = Object.hasOwn(testCase.params, name) ? testCase.params[name] : undefined;
      if (spec === undefined) {
        out[name] = value;
        this.findings.warn(
          paramPath,
          `param ${q(name)} is not declared by test case ${q(testCase.name)} (it declares: ` +
            `${listOrNone(Object.keys(testCase.params))}); passed on as ${q(value)}, as the original passed undeclared params through`,
        );
        continue;
      }
      const fit = fitParamValue(spec, value);
      out[name] = fit.value;
      if (fit.misfit === undefined) continue;
      const atRunTime = fit.typeFits
        ? ''
        : `: runenv.${sdkGetterFor(spec.type)}(${q(name)}) will refuse it, runenv.stringParam(${q(name)}) reads it`;
      this.findings.warn(
        paramPath,
        `${fit.misfit} (param ${q(name)} is declared as ${spec.type}); passed on as ${q(fit.value)}${atRunTime}`,
      );
    }
    return out;
  }
}

function q(value: string): string {
  return JSON.stringify(value);
}
