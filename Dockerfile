# syntax=docker/dockerfile:1.7
# Bulwark operator and agent share one image; the command picks the role (`bulwark operator` / `bulwark agent`),
# as the chart's Deployment and the sidecar injector do.
#
# Node 22 LTS: package.json's engines (>=20) allows it, and Node 20 left support on 2026-04-30, so a
# production image must not ship it. CI runs the tests on Node 20 (the machines' Node); nothing in the code
# depends on a 20-only behaviour. Keep the build and run stages on the same major (test/charts/dockerfile.test.ts).
# Checked by test/charts/dockerfile.test.ts (a hadolint-style checklist: hadolint is not in Debian 12).
ARG NODE_MAJOR=22

# ---- build: dev dependencies, TypeScript → dist/, then production dependencies only ----
FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /src
ENV NODE_ENV=development
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY operator ./operator
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts \
 && rm -rf node_modules/.cache

# ---- run: distroless Node (no shell, no package manager), non-root ----
FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot
LABEL org.opencontainers.image.title="bulwark" \
      org.opencontainers.image.description="Bulwark resilience operator and sidecar agent" \
      org.opencontainers.image.source="https://github.com/bulwark-dev/bulwark" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
# glibc's default trim threshold hands freed heap back to the kernel after each burst of 64 KiB socket
# buffers and takes it again; 64 MiB halves the agent's CPU per GB of tcp traffic (docs/agent.md, TCP).
ENV NODE_ENV=production \
    MALLOC_TRIM_THRESHOLD_=67108864
COPY --from=build --chown=65532:65532 /src/package.json ./package.json
COPY --from=build --chown=65532:65532 /src/node_modules ./node_modules
COPY --from=build --chown=65532:65532 /src/dist/operator ./dist/operator
USER 65532:65532
# operator: metrics, health, distribution, webhooks; agent: admin, outbound, inbound (CONTRACT.md "Ports")
EXPOSE 9464 8081 15010 9443 15000 15001 15006
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/operator/cli/main.js"]
CMD ["operator"]
