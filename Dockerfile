# The operator image used by manifests/deployment.yaml (passcode-operator:0.1.0).
#   docker build -t passcode-operator:0.1.0 .
FROM rust:1.91-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/passcode-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/passcode-operator /usr/local/bin/passcode-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/passcode-operator"]
CMD ["run"]
