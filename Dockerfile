# The operator image used by manifests/deployment.yaml (passcode-operator:0.1.0).
#   docker build -t passcode-operator:0.1.0 .
# Without Docker: `make image` (hack/image build) makes the same image with buildah: the same
# rootfs script, and USER, ENV, LABEL, ENTRYPOINT and CMD read from this file's last stage.
FROM rust:1.91-bookworm AS build
WORKDIR /src
COPY . .
# The rootfs: the two binaries, the libraries they link and the CA bundle, from Debian packages;
# no shell, no package manager (hack/image).
RUN cargo build --release --locked \
 && strip target/release/passcode-operator target/release/kubectl-passcode \
 && hack/image rootfs /rootfs target/release/passcode-operator target/release/kubectl-passcode

FROM scratch
COPY --from=build /rootfs/ /
# The kubectl plugin rides along, for copying out:
#   docker cp $(docker create IMAGE):/usr/local/bin/kubectl-passcode .
ENV PATH=/usr/local/bin
LABEL org.opencontainers.image.source=https://github.com/passcode-operator/passcode-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/passcode-operator"]
CMD ["run"]
