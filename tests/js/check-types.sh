#!/bin/sh
# Type-check tests/js/usage.ts, a page's use of triows.js, against triows/static/triows.d.ts
# with TypeScript 5 in strict mode (fetched by npx from the npm registry the first time).
set -eu
cd "$(dirname "$0")/../.."
exec npx --yes -p typescript@5 tsc --noEmit --strict --target es2022 --module esnext \
  --moduleResolution bundler --lib es2022,dom tests/js/usage.ts
