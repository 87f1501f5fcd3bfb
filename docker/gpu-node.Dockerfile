# ChunkSeg GPU-node image: the `chunkseg` CLI (run as `worker --backend opencl`) on an NVIDIA CUDA base with
# the .NET 10 runtime, the OpenCL ICD loader and the NVIDIA OpenCL ICD registered. Build from the repository root:
#   docker build -f docker/gpu-node.Dockerfile -t ghcr.io/chunkseg/gpu-node:0.8.0 .
# The worker computes through OpenCL, not the CUDA toolkit, so the small `base` flavour suffices: the NVIDIA
# container toolkit mounts the driver's libnvidia-opencl.so.1 into the container when the `compute`
# capability is requested (NVIDIA_DRIVER_CAPABILITIES below).

FROM mcr.microsoft.com/dotnet/sdk:10.0-noble AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/Cli/ChunkSeg.Cli.csproj -c Release -o /app --nologo -p:UseAppHost=false

# Only a source of the .NET runtime files (same Ubuntu release as the final stage).
FROM mcr.microsoft.com/dotnet/runtime:10.0-noble AS dotnet-runtime

FROM nvidia/cuda:12.6.3-base-ubuntu24.04 AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libssl3t64 \
      libstdc++6 \
      zlib1g \
      tzdata \
      ocl-icd-libopencl1 \
      libhdf5-103-1t64 \
      libblosc1 \
      libzstd1 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/OpenCL/vendors \
 && echo libnvidia-opencl.so.1 > /etc/OpenCL/vendors/nvidia.icd
COPY --from=dotnet-runtime /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
RUN groupadd --system --gid 10001 chunkseg \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin chunkseg
WORKDIR /app
COPY --from=build --chown=root:root /app /app
ENV DOTNET_NOLOGO=1 \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001
# 4053: Akka remoting (--port), how cluster members reach each other; 8080: --health-port (/healthz, /readyz).
EXPOSE 4053 8080
ENTRYPOINT ["dotnet", "/app/chunkseg.dll"]
CMD ["worker"]
