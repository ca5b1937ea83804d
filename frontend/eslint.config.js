// ESLint flat config for the dashboard: browser ES modules, no bundler. Formatting is prettier's job
// (.prettierrc.json), so only rules about correctness are on: eslint's recommended set plus a few.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["node_modules/"] },
  js.configs.recommended,
  {
    files: ["static/js/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      // Plotly comes from /vendor/plotly.min.js as a classic script, so it is a global.
      globals: { ...globals.browser, Plotly: "readonly" },
    },
    rules: {
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
      "no-var": "error",
      "prefer-const": "error",
    },
  },
  {
    files: ["eslint.config.js"],
    languageOptions: { sourceType: "module", globals: globals.node },
  },
];
