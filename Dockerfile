# syntax=docker/dockerfile:1.7
# Bulwark operator and agent share one image; the command picks the role (`bulwark operator` / `bulwark agent`).
ARG NODE_VERSION=20.20.2

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY operator ./operator
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
USER 65532:65532
EXPOSE 9464 8081 15010 9443 15000 15001 15006
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/operator/cli/main.js"]
CMD ["operator"]
