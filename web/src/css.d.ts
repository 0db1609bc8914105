// esbuild bundles imported style sheets into main.css; to the type checker they are side effects only.
declare module '*.css';
