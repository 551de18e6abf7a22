# One image holds all four binaries; docker-compose.yml and the Procfile pick
# the process with the command.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 cleantrack
COPY --from=build /out/ /usr/local/bin/
USER cleantrack
WORKDIR /home/cleantrack
ENV LOG_FORMAT=json
EXPOSE 8000 8001
CMD ["web"]
