// autocannon ships no type declarations; bench/load.ts describes the part it uses.
declare module 'autocannon';
