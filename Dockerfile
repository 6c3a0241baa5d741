# One image for Berth's API, workers and migrations; the command picks the process.
#
# The base is a build argument: any Debian-based image with Node.js (a maintained LTS, 22 or
# later) and npm. Debian (glibc) on purpose: the @temporalio/core-bridge native module is built
# for glibc, so Alpine (musl) images cannot load it. Node 24 is the active LTS line; the default
# is its official Debian bookworm image. Offline builds pass their own
# (`--build-arg BASE_IMAGE=...`; test/integration/compose-boot.test.ts makes one with debootstrap).
ARG BASE_IMAGE=node:24-bookworm-slim

# The build stage: the web console (web/, a Vite build) needs the development dependencies; only
# its output, web/dist, reaches the image.
FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY web ./web
RUN npm run web:build && test -f web/dist/index.html

FROM ${BASE_IMAGE}

# jemalloc, the host worker's allocator when present (workers/host-worker.sh says why). An offline
# build whose base image cannot reach a Debian mirror goes on without it: glibc's malloc, with
# fewer arenas.
RUN (apt-get update -qq && apt-get install -y -qq --no-install-recommends libjemalloc2 && rm -rf /var/lib/apt/lists/*) \
  || echo "libjemalloc2 not installed: the host worker uses glibc's malloc"

WORKDIR /app

# Production dependencies exactly as the lockfile pins them (tsx is one: the API and the control
# worker run their TypeScript with `node --import tsx`; esbuild is one: the host worker runs the
# JavaScript it compiles below). Test-only packages are devDependencies.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Every source directory the processes import (api, workers, migrations).
COPY tsconfig.json ./
COPY activities ./activities
COPY api ./api
COPY billing ./billing
COPY contracts ./contracts
COPY core ./core
COPY db ./db
COPY repositories ./repositories
COPY services ./services
COPY workers ./workers
COPY workflows ./workflows
# The web console the API serves at / (BERTH_WEB_DIR's default, /app/web/dist).
COPY --from=build /app/web/dist ./web/dist
# The host worker runs compiled JavaScript with its memory settings (workers/host-worker.sh).
RUN npm run build:js && test -f dist/js/workers/host.js

# The workflow code, bundled once here; the control worker loads the file instead of running
# webpack at every start (workers/workflow-code.ts).
ENV BERTH_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
RUN node --import tsx workers/bundle-workflows.ts "$BERTH_WORKFLOW_BUNDLE" >/dev/null

ENV NODE_ENV=production
# Runs unprivileged (the `node` user of the official images; uid 1000). The host worker needs
# the Docker socket and is run as root by docker-compose.yml (`user: root`).
USER 1000:1000

EXPOSE 8080
CMD ["node", "--import", "tsx", "api/server.ts"]
