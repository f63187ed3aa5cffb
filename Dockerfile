# syntax=docker/dockerfile:1.7
# One image per service, from one Dockerfile:
#
#   docker build --build-arg SERVICE=catalog -t platform-catalog:0.1.0 .
#
# SERVICE names a workspace package whose binary has the same name (today: catalog). Migrations,
# policy profiles, the holiday calendar and the event schemas are compiled into the binary, so
# the image holds that one file. Docker cannot run on the machine this was written on: the file
# is checked by scripts/check-k8s.sh (every path and binary it names exists), not built there.

ARG RUST_VERSION=1.95
ARG SERVICE=catalog

# ---- build: the release binary of $SERVICE -------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
ARG SERVICE
# rdkafka-sys builds librdkafka from source (C toolchain, make, perl, python3). zlib is linked
# statically so the binary needs nothing beyond glibc and libgcc (what the distroless cc base has).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends build-essential perl python3 \
 && rm -rf /var/lib/apt/lists/*
ENV LIBZ_SYS_STATIC=1 CARGO_TERM_COLOR=never
WORKDIR /src
# Every workspace member must be present for cargo to read the workspace (see .dockerignore).
COPY Cargo.toml Cargo.lock ./
COPY shared ./shared
COPY services ./services
COPY proto ./proto
COPY loadtest ./loadtest
# Dependencies stay compiled between builds in BuildKit cache mounts (registry, git and target,
# shared by every service's build); only changed workspace crates are rebuilt. The binary is copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p "${SERVICE}" --bin "${SERVICE}" \
 && install -D -m 0755 "target/release/${SERVICE}" /out/service \
 && if ldd /out/service | grep -v -E 'linux-vdso|libc\.so|libm\.so|libgcc_s\.so|ld-linux|libpthread|libdl\.so|librt\.so'; then \
      echo "the binary links a library the runtime image lacks (above)" >&2; exit 1; \
    fi

# ---- runtime: distroless, non-root (uid 65532), no shell ---------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="platform-${SERVICE}" \
      org.opencontainers.image.description="公共数据资源授权运营平台 — ${SERVICE} service" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/service /usr/local/bin/service
USER 65532:65532
EXPOSE 8080
ENV PLATFORM__HTTP__BIND=0.0.0.0:8080
ENTRYPOINT ["/usr/local/bin/service"]
