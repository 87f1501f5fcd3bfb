# ChunkSeg coordinator image: the `chunkseg` CLI on the .NET 10 runtime plus the native Blosc and Zstandard
# libraries (HDF5 is PureHDF, managed code). Build from the repository root:
#   docker build -f docker/coordinator.Dockerfile -t ghcr.io/chunkseg/coordinator:0.8.0 .
# .NET 10 images come on Ubuntu 24.04 "noble" (Microsoft publishes no Debian images for .NET 10).

FROM mcr.microsoft.com/dotnet/sdk:10.0-noble AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/Cli/ChunkSeg.Cli.csproj -c Release -o /app --nologo -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/runtime:10.0-noble AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libblosc1 \
      libzstd1 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 chunkseg \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin chunkseg
WORKDIR /app
COPY --from=build --chown=root:root /app /app
ENV DOTNET_NOLOGO=1 \
    DOTNET_CLI_TELEMETRY_OPTOUT=1
USER 10001
# 4053: Akka remoting (--port), how cluster members reach each other; 8080: --http-port (/healthz, /readyz, /metrics; the job page on coordinators).
EXPOSE 4053 8080
ENTRYPOINT ["dotnet", "/app/chunkseg.dll"]
CMD ["coordinator"]
