import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import tseslint from 'typescript-eslint';

/**
 * The layers of the code (docs/architecture.md): each folder may import only the folders listed for it.
 * The lists form a DAG, so no two folders can ever import each other. Files outside these folders
 * (bin/, scripts/, test/, plans/) are entry points and may import anything.
 */
const layers = {
  'core-contract': [],
  core: ['core-contract'],
  plan: ['core', 'core-contract'],
  docker: ['core', 'core-contract'],
  sync: ['core-contract'],
  sdk: ['core-contract'],
  builders: ['core', 'core-contract', 'plan', 'docker'],
  runners: ['core', 'core-contract', 'plan', 'docker', 'builders', 'sync', 'sdk'],
  api: ['core', 'core-contract', 'plan'],
  daemon: ['core', 'core-contract', 'plan', 'docker', 'builders', 'runners', 'sync', 'sdk', 'api'],
  cli: ['core', 'core-contract'],
  // The dashboard runs in the browser: nothing of ours but the API's schemas (types only).
  web: [],
};

const layering = {
  // Element patterns match a folder anywhere in a path (test/cli/… would count as cli/): check only the
  // layers' own files.
  files: Object.keys(layers).map((type) => `${type.replace('-', '/')}/**/*.ts`),
  plugins: { boundaries },
  settings: {
    // The first pattern that matches names the element: core/contract before core.
    'boundaries/elements': [
      { type: 'core-contract', pattern: 'core/contract' },
      ...Object.keys(layers)
        .filter((type) => type !== 'core-contract')
        .map((type) => ({ type, pattern: type })),
    ],
    'boundaries/files': [{ category: 'api-schemas', pattern: 'api/schemas.ts' }],
  },
  rules: {
    'boundaries/dependencies': [
      'error',
      {
        default: 'disallow',
        message:
          '{{from.type}}/ may not import {{to.type}}/: see the layers in eslint.config.js and docs/architecture.md',
        policies: [
          ...Object.entries(layers).map(([type, allowed]) => ({
            from: { element: { type } },
            allow: { to: { element: { types: { anyOf: [type, ...allowed] } } } },
          })),
          // The CLI and the dashboard speak the API's language and nothing else of it.
          ...['cli', 'web'].map((type) => ({
            from: { element: { type } },
            allow: { to: { element: { type: 'api' }, file: { categories: 'api-schemas' } } },
          })),
        ],
      },
    ],
  },
};

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      '**/node_modules/',
      'dist/',
      'web/dist/',
      'sdk/dist/',
      '**/.testground/',
      'test/fixtures/**/bundle*',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextDecoder: 'readonly',
        fetch: 'readonly',
        performance: 'readonly',
        setImmediate: 'readonly',
        queueMicrotask: 'readonly',
        structuredClone: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Type-aware rules: the type checker knows which calls return promises.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's describe/it return promises the runner itself awaits.
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'it', 'test', 'suite', 'before', 'after'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/naming-convention': [
        'error',
        { selector: 'default', format: ['camelCase'], leadingUnderscore: 'allow' },
        { selector: 'import', format: ['camelCase', 'PascalCase'] },
        // Module constants are camelCase too (`maxEntriesPerTask`), never UPPER_CASE.
        { selector: 'variable', format: ['camelCase', 'PascalCase'], leadingUnderscore: 'allow' },
        { selector: 'function', format: ['camelCase', 'PascalCase'] },
        { selector: 'typeLike', format: ['PascalCase'] },
        { selector: 'enumMember', format: ['PascalCase'] },
        // Keys follow the formats they speak: wire protocols, env variables, HTTP headers, labels.
        { selector: ['objectLiteralProperty', 'typeProperty', 'objectLiteralMethod'], format: null },
        { selector: 'classProperty', modifiers: ['static'], format: ['camelCase'] },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'PrivateIdentifier',
          message: 'Use the TypeScript `private` keyword, not `#` names: one convention for private members.',
        },
      ],
    },
  },
  layering,
  {
    // Plans bundle the contract through the SDK: it must not pull in any package, npm's or Node's.
    files: ['core/contract/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\./)',
              message:
                'core/contract/ imports only its own files: plans bundle it, so it must stay dependency-free.',
            },
          ],
        },
      ],
    },
  },
);
