# syntax=docker/dockerfile:1
# The client agent image (docs/deploy.md). Build from the repository root:
#
#   docker build -f deploy/docker/agent.Dockerfile -t federated-agent .
#   docker run -v federated-agent:/var/lib/federated-client -v /usr/share/datasets/fashion-mnist:/data:ro \
#     -e FEDERATED_CLIENT__CoordinatorAddress=https://coordinator.example:5001 -e FEDERATED_CLIENT__EnrolmentToken=... federated-agent
#
# As in coordinator.Dockerfile, the GLIBCXX patch of libLibTorchSharp.so (build/Federated.Native.targets) follows the
# build stage's libstdc++: keep both stages on one distribution (DISTRO applies to both).
ARG DISTRO=
FROM mcr.microsoft.com/dotnet/sdk:10.0${DISTRO} AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY protos/ protos/
COPY src/Protocol/Federated.Protocol.csproj src/Protocol/
COPY src/Learning/Federated.Learning.csproj src/Learning/
COPY src/Client/Federated.Client.csproj src/Client/
RUN dotnet restore src/Client/Federated.Client.csproj -r linux-x64 -p:FederatedTorchBackend=cpu
COPY src/Protocol/ src/Protocol/
COPY src/Learning/ src/Learning/
COPY src/Client/ src/Client/
RUN dotnet publish src/Client/Federated.Client.csproj -c Release -r linux-x64 --self-contained false --no-restore \
      -p:FederatedTorchBackend=cpu -p:CreateHardLinksForPublishFilesIfPossible=false \
      -p:DebugType=none -p:GenerateDocumentationFile=false -o /app

ARG DISTRO=
FROM mcr.microsoft.com/dotnet/runtime:10.0${DISTRO} AS final
WORKDIR /app
COPY --from=build /app ./
RUN if ldd /app/libLibTorchSharp.so 2>&1 | grep -E "not found"; then echo "libLibTorchSharp.so cannot load here: build both stages on the same distribution" >&2; exit 1; fi
# The agent's id, Ed25519 key, model and pending uploads live in its state directory: keep it on a volume, or the agent
# is a new one (and needs a new enrolment) after every restart. Training data (IDX files) is mounted at /data.
ENV FEDERATED_CLIENT__StateDirectory=/var/lib/federated-client/state \
    FEDERATED_CLIENT__Data__Directory=/data
RUN mkdir -p /var/lib/federated-client/state && chown -R app:app /var/lib/federated-client
VOLUME /var/lib/federated-client
# The non-root user of the .NET images (uid 1654), numeric so that Kubernetes can check runAsNonRoot.
USER $APP_UID
ENTRYPOINT ["/app/federated-client"]
