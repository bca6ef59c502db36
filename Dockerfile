# keyledger: the server and the command line in one image.
#   docker build -t keyledger .
# The runtime stage carries SoftHSM2 too, for the PKCS#11 backend as an
# option (docker-compose.yml, profile "pkcs11").
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin keyledger

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates softhsm2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/keyledger --create-home keyledger \
 && chmod 0700 /var/lib/keyledger
COPY --from=build /src/target/release/keyledger /usr/local/bin/keyledger
USER keyledger
ENV KEYLEDGER_DATA_DIR=/var/lib/keyledger
EXPOSE 8080 9464
ENTRYPOINT ["keyledger"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--ops-listen", "0.0.0.0:9464"]
