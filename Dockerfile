# Latchkey's container image: a locked release build, then a small runtime that runs as a non-root
# user. Build: `docker build -t latchkey .`; run and compose: docs/operations.md ("Container image").
# Plain Dockerfile syntax (no BuildKit-only instructions), so the classic builder builds it too.

# --- Build -------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, against placeholder sources, so that this layer is reused as long as
# Cargo.toml and Cargo.lock do not change (the manifest names a test and an example: they need a file).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src bench tests/api \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > bench/code_flow.rs && touch tests/api/main.rs \
    && cargo build --release --locked --bin latchkey \
    && rm -rf src bench tests
# Templates, static files and migrations are compiled into the binary (askama, include_bytes!,
# sqlx::migrate!), so the runtime stage needs nothing from the source tree.
COPY . .
# COPY keeps the files' own times, which may be older than the placeholder build: touch the crate
# roots so that cargo rebuilds the crate itself.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin latchkey \
    && install -D -m 0755 target/release/latchkey /out/latchkey

# --- Runtime -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
# The binary links libssl3 and libcrypto3 (OpenSSL, through josekit); ca-certificates lets it
# verify SMTP servers and upstream identity providers. Nothing else: no shell tools, no curl.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 latchkey \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/latchkey \
               --shell /usr/sbin/nologin latchkey \
    && install -d -o latchkey -g latchkey -m 0700 /var/lib/latchkey
COPY --from=build /out/latchkey /usr/local/bin/latchkey

# The SQLite database and, without a configured key-encryption key, `latchkey.kek` beside it live
# in the volume. Mail goes to /var/lib/latchkey/mail unless LATCHKEY_SMTP_URL is set.
WORKDIR /var/lib/latchkey
VOLUME ["/var/lib/latchkey"]
ENV LATCHKEY_BIND=0.0.0.0:8080 \
    LATCHKEY_DATABASE_URL=sqlite:///var/lib/latchkey/latchkey.db \
    LATCHKEY_MAIL_DIR=/var/lib/latchkey/mail \
    LATCHKEY_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8080
# The image has no curl: the binary checks itself (`GET /healthz` on LATCHKEY_BIND, 2 s, exit 0/1).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["latchkey", "healthcheck"]
ENTRYPOINT ["latchkey"]
CMD ["serve"]
