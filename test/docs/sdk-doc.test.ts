/**
 * docs/sdk.md names every export of sdk/index.ts (what plans import as `testground-sdk`) and every public
 * member of its classes, as the TypeScript compiler sees them, so an export added without a word in the
 * reference fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { repoRoot } from '../helpers/processes.ts';

const entry = path.join(repoRoot, 'sdk/index.ts');
const reference = readFileSync(path.join(repoRoot, 'docs/sdk.md'), 'utf8');

interface Exported {
  name: string;
  /** Public members a plan can call or read, for classes; empty otherwise. */
  members: string[];
}

function sdkExports(): Exported[] {
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2023,
    allowImportingTsExtensions: true,
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    types: ['node'],
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  assert.ok(source, `the compiler read ${entry}`);
  const module = checker.getSymbolAtLocation(source);
  assert.ok(module, 'sdk/index.ts is a module');
  return checker.getExportsOfModule(module).map((symbol) => {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    if (!(target.flags & ts.SymbolFlags.Class)) return { name: symbol.name, members: [] };
    const declaration = target.declarations?.find(ts.isClassDeclaration);
    const members = (declaration?.members ?? []).flatMap((member) => {
      if (ts.isConstructorDeclaration(member) || member.name === undefined) return [];
      const modifiers = ts.canHaveModifiers(member) ? (ts.getModifiers(member) ?? []) : [];
      const hidden = modifiers.some(
        (modifier) =>
          modifier.kind === ts.SyntaxKind.PrivateKeyword || modifier.kind === ts.SyntaxKind.ProtectedKeyword,
      );
      return hidden || ts.isPrivateIdentifier(member.name) ? [] : [member.name.getText()];
    });
    return { name: symbol.name, members: [...new Set(members)] };
  });
}

/** Whether `name` appears as a word inside some `code span` of the reference. */
function named(name: string): boolean {
  const word = new RegExp(`(^|[^A-Za-z0-9_$])${name.replace(/\$/g, '\\$')}($|[^A-Za-z0-9_$])`);
  return [...reference.matchAll(/`([^`\n]+)`/g)].some((span) => word.test(span[1]!));
}

describe('docs/sdk.md', () => {
  const exported = sdkExports();

  it('sees the exports of sdk/index.ts', () => {
    const names = exported.map((e) => e.name);
    for (const known of ['invokeMap', 'RunEnv', 'SyncClient', 'NetworkClient', 'Subscription']) {
      assert.ok(names.includes(known), `${known} is among ${names.join(', ')}`);
    }
    assert.ok(exported.find((e) => e.name === 'RunEnv')?.members.includes('intParam'));
  });

  it('names every export of sdk/index.ts', () => {
    const missing = exported.filter((e) => !named(e.name)).map((e) => e.name);
    assert.deepEqual(missing, [], `exports of sdk/index.ts that docs/sdk.md does not name in code`);
  });

  it('names every public member of every exported class', () => {
    const missing = exported.flatMap((e) =>
      e.members.filter((member) => !named(member)).map((member) => `${e.name}.${member}`),
    );
    assert.deepEqual(missing, [], 'members that docs/sdk.md does not name in code');
  });
});
