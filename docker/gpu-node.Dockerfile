# ChunkSeg GPU-node image: the `chunkseg` CLI (run as `worker --backend gpu`) on the .NET 10 runtime. Build from the
# repository root:
#   docker build -f docker/gpu-node.Dockerfile -t ghcr.io/chunkseg/gpu-node:0.8.0 .
# The kernels are C# compiled by ILGPU to PTX at run time and loaded through the NVIDIA driver's libcuda.so.1, so
# the image needs no CUDA toolkit, no NVRTC and no OpenCL ICD: NVIDIA's container toolkit mounts libcuda.so.1 (and
# nvidia-smi) into the container when the `compute` capability is asked for (NVIDIA_DRIVER_CAPABILITIES below), on
# any base image. Hence the plain .NET runtime image, the same one the coordinator uses.

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
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    CHUNKSEG_GPU=cuda
USER 10001
# 4053: Akka remoting (--port), how cluster members reach each other; 8080: --http-port (/healthz, /readyz, /metrics; the job page on coordinators).
EXPOSE 4053 8080
ENTRYPOINT ["dotnet", "/app/chunkseg.dll"]
CMD ["worker"]
