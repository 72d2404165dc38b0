# syntax=docker/dockerfile:1
# The coordinator image (docs/deploy.md). Build from the repository root:
#
#   docker build -f deploy/docker/coordinator.Dockerfile -t federated-coordinator .
#   docker run -p 5001:5001 -v $PWD/tls:/etc/federated/tls:ro -v federated-state:/var/lib/federated federated-coordinator
#
# TorchSharp's libLibTorchSharp.so is patched for an older libstdc++ at publish time (build/Federated.Native.targets:
# the GLIBCXX_3.4.32 requirement is weakened when the *build* stage's libstdc++ lacks it). The patch follows the build
# stage's libstdc++, so both stages must use the same distribution: set DISTRO for both at once (e.g. --build-arg
# DISTRO=-noble), never one FROM alone. The last RUN below checks that the loader accepts the library.
ARG DISTRO=
FROM mcr.microsoft.com/dotnet/sdk:10.0${DISTRO} AS build
WORKDIR /src
# Restore in a layer of its own: it changes only with the project files.
COPY global.json Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY protos/ protos/
COPY src/Protocol/Federated.Protocol.csproj src/Protocol/
COPY src/Learning/Federated.Learning.csproj src/Learning/
COPY src/Coordinator/Federated.Coordinator.csproj src/Coordinator/
RUN dotnet restore src/Coordinator/Federated.Coordinator.csproj -r linux-x64 -p:FederatedTorchBackend=cpu
COPY src/Protocol/ src/Protocol/
COPY src/Learning/ src/Learning/
COPY src/Coordinator/ src/Coordinator/
# Framework-dependent (the aspnet image brings the runtime), CPU libtorch, copies rather than hard links into the cache.
RUN dotnet publish src/Coordinator/Federated.Coordinator.csproj -c Release -r linux-x64 --self-contained false --no-restore \
      -p:FederatedTorchBackend=cpu -p:CreateHardLinksForPublishFilesIfPossible=false \
      -p:DebugType=none -p:GenerateDocumentationFile=false -o /app

ARG DISTRO=
FROM mcr.microsoft.com/dotnet/aspnet:10.0${DISTRO} AS final
WORKDIR /app
COPY --from=build /app ./
# The loader must accept TorchSharp's native library with this image's libstdc++ (a build stage on another distribution
# would leave a GLIBCXX requirement that fails only at the first tensor): fail the image build instead.
RUN if ldd /app/libLibTorchSharp.so 2>&1 | grep -E "not found"; then echo "libLibTorchSharp.so cannot load here: build both stages on the same distribution" >&2; exit 1; fi
# State (SQLite database, checkpoints, rounds.csv, the agent registry) on a volume; TLS certificate and key mounted read-only.
ENV ASPNETCORE_HTTP_PORTS= \
    ASPNETCORE_URLS=https://+:5001 \
    Coordinator__StateDirectory=/var/lib/federated/coordinator \
    Coordinator__Security__Tls__CertificatePath=/etc/federated/tls/tls.crt \
    Coordinator__Security__Tls__KeyPath=/etc/federated/tls/tls.key
RUN mkdir -p /var/lib/federated/coordinator && chown -R app:app /var/lib/federated
VOLUME /var/lib/federated
# The non-root user of the .NET images (uid 1654), numeric so that Kubernetes can check runAsNonRoot.
USER $APP_UID
# 5001: gRPC over TLS (agents). 8080: the dashboard (Coordinator:Dashboard:Url). 9464: Prometheus (Coordinator:Prometheus:Url).
EXPOSE 5001 8080 9464
ENTRYPOINT ["/app/federated-coordinator"]
