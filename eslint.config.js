// ESLint (flat config): typescript-eslint's recommended rules, no import cycles (import-x with
// the TypeScript resolver), and nothing that Prettier formats. `npm run lint` runs it, and
// then the layering and the cycles that import-x cannot see (type-only imports):
// .dependency-cruiser.cjs.
import js from '@eslint/js';
import globals from 'globals';
import prettier from 'eslint-config-prettier';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'results/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  importX.flatConfigs.typescript,
  {
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    rules: {
      // Cycles of value imports; import-x skips type-only ones, which .dependency-cruiser.cjs counts.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // In source, a value's type is what it is: no double cast through unknown.
    files: ['core/**', 'lab/**', 'server/**', 'sysctl/**', 'native/**', 'scripts/**', 'bench/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'TSAsExpression > TSAsExpression[typeAnnotation.type="TSUnknownKeyword"]',
          message: 'no `as unknown as` in source: give the value its type',
        },
      ],
    },
  },
  prettier,
);
