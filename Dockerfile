# One image for Berth's API, workers and migrations; the command picks the process.
# Debian-based on purpose: the @temporalio/core-bridge native module is built for glibc,
# so Alpine (musl) images cannot load it.
FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
# tsx is a runtime dependency: Berth runs its TypeScript with `node --import tsx`, no build step.
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY api ./api
COPY activities ./activities
COPY core ./core
COPY db ./db
COPY services ./services
COPY workers ./workers
COPY workflows ./workflows

# Runs unprivileged by default. The host worker needs the Docker socket and is run as
# root by docker-compose.yml (`user: root`).
USER node

EXPOSE 8080
CMD ["node", "--import", "tsx", "api/server.ts"]
