# resumption_exporter container image.
#
#   docker build -t resumption_exporter .
#   docker run -p 10517:10517 -v resumption-history:/var/lib/resumption_exporter resumption_exporter
#
# Build stage: a static binary (no cgo, so it runs on a base without libc).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION}" -o /out/resumption_exporter .
# The history directory, owned by the nonroot user (65532) so that a fresh
# named volume mounted there inherits a directory the exporter can write.
RUN mkdir -p /out/history

# Final stage: distroless static, running as the nonroot user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/resumption_exporter /bin/resumption_exporter
COPY config.yml /etc/resumption_exporter/config.yml
COPY --from=build --chown=65532:65532 /out/history /var/lib/resumption_exporter
USER 65532:65532
EXPOSE 10517
# The key history must outlive the container, or the "not rotated within a
# day" alert is blind for a day after every restart.
VOLUME /var/lib/resumption_exporter
ENTRYPOINT ["/bin/resumption_exporter"]
CMD ["--config.file=/etc/resumption_exporter/config.yml", "--history.path=/var/lib/resumption_exporter/history.json"]
