# The operator image used by manifests/deployment.yaml (passcode-operator:0.1.0).
#   docker build -t passcode-operator:0.1.0 .
FROM rust:1.91-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && strip target/release/passcode-operator target/release/kubectl-passcode

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/passcode-operator /usr/local/bin/passcode-operator
# The kubectl plugin, for copying out: docker cp $(docker create IMAGE):/usr/local/bin/kubectl-passcode .
COPY --from=build /src/target/release/kubectl-passcode /usr/local/bin/kubectl-passcode
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/passcode-operator"]
CMD ["run"]
