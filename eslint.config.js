// ESLint's flat config: the panel's browser scripts (callcenter/web/static, and each domain package's static/ folder
// with its pages' scripts), plain ES5-style scripts with no build step, each in its own "use strict" function,
// sharing only window.CC (common.js); and the tests' node scripts. `make lint-js` runs it; `npm ci` installs the exact ESLint of package-lock.json.
"use strict";

const js = require("@eslint/js");
const globals = require("globals");

module.exports = [
  {
    ignores: ["node_modules/", ".venv/", "var/", "build/", "callcenter/web/static/vendor/"],  // packages' own files
  },
  {
    files: ["callcenter/**/static/**/*.js"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2020,
      sourceType: "script",
      globals: { ...globals.browser, CC: "readonly" },
    },
    rules: {
      ...js.configs.recommended.rules,
      "eqeqeq": ["error", "always"],
      "max-len": ["error", { code: 120, ignoreUrls: true }],  // as ruff's line length for the Python
      "no-implicit-globals": "error",
      "no-shadow": "error",
      "no-use-before-define": ["error", { functions: false, variables: true }],
      "strict": ["error", "function"],
    },
  },
  {
    // The tests' node servers (tests/smpp_server.js: the SMSC on the npm package smpp).
    files: ["tests/**/*.js"],
    ...js.configs.recommended,
    languageOptions: { ecmaVersion: 2022, sourceType: "commonjs", globals: globals.node },
    rules: {
      ...js.configs.recommended.rules,
      "eqeqeq": ["error", "always"],
      "max-len": ["error", { code: 120, ignoreUrls: true }],
      "no-shadow": "error",
    },
  },
  {
    files: ["eslint.config.js"],
    languageOptions: { sourceType: "commonjs", globals: globals.node },
  },
];
