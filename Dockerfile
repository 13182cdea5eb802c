# tcplab images. Targets: `server` (the reactor + its control API, and nginx for server.kind
# nginx; non-root) and `loadgen`
# (ab, wrk, httperf, hping3, nftables, autocannon; wrk2 with --build-arg WITH_WRK2=1).
#
# The build context is not the repository: `lab` stages it (lab/runtime/images.ts) as
#   node            the host's Node binary (Debian's bookworm ships Node 18; the lab needs 20)
#   addon/          CMakeLists.txt, native/src, node-addon-api and node-api-headers: compiled here
#   app/modules/    the production node_modules from the host's install (pure JS: no npm registry
#                   needed, which containers here cannot reach)
#   app/dist/ …     the compiled TypeScript, package.json, the wrk pipelining script
# Layers go from least to most often changed: a TS-only change rebuilds only the last COPY.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS os
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 net-tools procps \
 && rm -rf /var/lib/apt/lists/*
COPY node /usr/local/bin/node

FROM os AS addon
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ cmake ninja-build liburing-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY addon/ ./
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_JS_INC=/src/node_modules/node-api-headers/include \
 && cmake --build build \
 && test -f build/tcplab_native.node

FROM os AS server
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin tcplab
WORKDIR /app
COPY app/modules/ node_modules/
COPY --from=addon /src/build/tcplab_native.node build/Release/tcplab_native.node
COPY app/files/ ./
USER tcplab
EXPOSE 8080 9090
CMD ["node", "dist/server/main.js"]

FROM os AS loadgen
RUN apt-get update \
 && apt-get install -y --no-install-recommends apache2-utils wrk httperf hping3 nftables tcpdump \
 && rm -rf /var/lib/apt/lists/*
# wrk2 is not in Debian: built from its upstream source when asked (needs internet at build
# time). When it is off or fails the image still builds; the lab then says wrk2 is missing.
ARG WITH_WRK2=0
RUN if [ "$WITH_WRK2" = 1 ]; then \
      ( apt-get update && apt-get install -y --no-install-recommends git make gcc libssl-dev zlib1g-dev ca-certificates \
        && git clone --depth 1 https://github.com/giltene/wrk2 /tmp/wrk2 && make -C /tmp/wrk2 \
        && cp /tmp/wrk2/wrk /usr/local/bin/wrk2 ) || echo "wrk2: build failed; the image has no wrk2"; \
      rm -rf /tmp/wrk2 /var/lib/apt/lists/*; \
    fi
WORKDIR /app
COPY app/modules/ node_modules/
COPY --from=addon /src/build/tcplab_native.node build/Release/tcplab_native.node
COPY app/files/ ./
CMD ["sleep", "infinity"]
