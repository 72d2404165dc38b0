namespace Federated.Coordinator.Hosting;

/// <summary>The text <c>--help</c> prints.</summary>
internal static class CoordinatorHelp
{
    public const string Text = """
        federated-coordinator: the Federated coordinator (ASP.NET Core gRPC service).

        Usage: federated-coordinator [--urls https://0.0.0.0:5001] [--Coordinator:Key=value ...]
               federated-coordinator agents register|list|revoke|token ...   (edit the agent registry; agents --help)
               federated-coordinator runs submit|list|show|pause|resume|abort ... (runs on a running coordinator; runs --help)

        Settings come from appsettings.json, then environment variables (Coordinator__Rounds=5), then the command
        line (--Coordinator:Rounds=5 or --Coordinator:Rounds 5). Invalid settings stop the start with a message.

          --urls                                   Listen addresses (default http://localhost:5000; https:// endpoints use
                                                   Coordinator:Security:Tls; http:// ones need Security:Plaintext).
          --Coordinator:StateDirectory             Checkpoints and rounds.csv (default state/coordinator).
          --Coordinator:Store                      sqlite | file: runs, rounds, metrics, the privacy ledger and
                                                   enrolments in an SQLite database, or checkpoint files only
                                                   (default sqlite; checkpoints are safetensors files either way).
          --Coordinator:DatabaseFile               The SQLite database, relative to StateDirectory (default coordinator.db).
          --Coordinator:Prometheus:Enabled         OpenTelemetry metrics served for Prometheus (default true).
          --Coordinator:Prometheus:Path            Scraping path (default /metrics).
          --Coordinator:Prometheus:Url             Extra HTTP/1.1 address for scrapers, e.g. http://0.0.0.0:9464
                                                   (default none: the path is served on the HTTP/2 gRPC addresses).
          --Coordinator:Dashboard:Enabled          Serve the read-only web dashboard (default false).
          --Coordinator:Dashboard:Path             Its address (default /dashboard; the JSON at /dashboard/api/state).
          --Coordinator:Dashboard:Url              Extra HTTP/1.1 address for browsers, e.g. http://127.0.0.1:8080
                                                   (default none: served on the gRPC addresses, which browsers reach
                                                   over TLS only). Beyond loopback it needs an AccessToken (or
                                                   Security:Plaintext allow, a trusted network).
          --Coordinator:Dashboard:AccessToken      Bearer token the JSON requires; open the page as /dashboard/#token=...
          --Coordinator:Dashboard:RefreshSeconds   How often the page polls (default 2).
          --Coordinator:Resume                     Resume from the last checkpoint (default true).
          --Coordinator:Model                      mlp | cnn | simple-cnn | resnet8 (default cnn).
          --Coordinator:InputShape:0..2            Channels, height, width (default 1, 28, 28).
          --Coordinator:NumClasses                 Classes (default 10).
          --Coordinator:Seed                       Initial model, sampling and client training seed (default 1).
          --Coordinator:Rounds                     Rounds to run (default 3).
          --Coordinator:Strategy                   fedavg | fedprox | fedavgm | fedadagrad | fedadam | fedyogi |
                                                   scaffold | fednova | fedper | ditto (default fedavg).
          --Coordinator:StrategyOptions:<name>     Strategy options, e.g. mu, server_lr, momentum, eta, tau;
                                                   fedper: head (parameter prefixes, e.g. fc3) or head_layers
                                                   (last N layers, default 1) stay on the agents; ditto: lambda
                                                   (default 0.1), personal_epochs (default 0: the local epochs).
          --Coordinator:StrategyOptions:aggregator Byzantine-robust aggregation stage (any strategy but scaffold):
                                                   the round's updates are validated and reduced by this rule, and
                                                   the strategy's server step runs on the result. Rules: mean |
                                                   median | trimmed_mean:beta=0.1 | krum:f=F | multikrum:f=F[,m=M] |
                                                   bulyan:f=F | geometric_median (rfa) | centered_clipping:tau=10
                                                   (cclip) | norm_bound:bound=median|B [> rule] | bucketing:s=2 >
                                                   rule; e.g. trimmed_mean:beta=0.2, bucketing:s=2 > cclip:tau=1.
                                                   Default none (plain weighted mean, no validation). A round whose
                                                   rule cannot run (e.g. Krum with fewer than 2f + 3 updates) fails
                                                   and leaves the global model unchanged; the run goes on.
          --Coordinator:StrategyOptions:max_norm_ratio  With aggregator: reject updates whose norm exceeds this
                                                   multiple of the round's median norm (default 10; off = no check).
          --Coordinator:StrategyOptions:min_norm_ratio  With aggregator: reject updates below this fraction of
                                                   the median norm (default off).
          --Coordinator:StrategyOptions:max_norm   With aggregator: reject updates above this norm (default off).
                                                   Rejections are logged and counted in rounds.csv (rejected,
                                                   agg_rejected.<reason>).
          --Coordinator:Deterministic              Sum results in agent-id order (default false).
          --Coordinator:FractionFit                Fraction of available agents asked per round (default 1).
          --Coordinator:Population                 connected | enrolled: sample open sessions, or every known agent
                                                   (offline ones get their task when they connect) (default connected).
          --Coordinator:RosterFile                 Pre-registered agent ids, one per line (default none).
          --Coordinator:MinAvailable               Agents needed before a round starts (default 2).
          --Coordinator:MinFit                     Fewest results a round may aggregate (default 2).
          --Coordinator:OverSelect                 Extra agents asked to absorb stragglers (default 0).
          --Coordinator:RoundDeadlineSeconds       Round deadline (default 600).
          --Coordinator:WaitForAgentsSeconds       Give up when agents do not come (default 0 = wait forever).
          --Coordinator:Training:Epochs            Local epochs per round (default 1).
          --Coordinator:Training:BatchSize         Local batch size (default 64).
          --Coordinator:Training:Optimizer         sgd | adam | adamw (default adam).
          --Coordinator:Training:LearningRate      Local learning rate (default 0.001).
          --Coordinator:Training:Momentum          SGD momentum (default 0).
          --Coordinator:Training:WeightDecay       Weight decay (default 0).
          --Coordinator:Training:GradientClipNorm  Gradient clip, 0 = off (default 0).
          --Coordinator:Evaluation:Source          idx | synthetic | none (default idx).
          --Coordinator:Evaluation:Directory       IDX directory (default $FEDERATED_DATA or /usr/share/datasets/fashion-mnist).
          --Coordinator:Evaluation:Split           Split to evaluate on (default test).
          --Coordinator:Evaluation:Normalization   fashion-mnist | mnist | none (default fashion-mnist).
          --Coordinator:Evaluation:Threads         libtorch threads for evaluation (default 0 = all cores).
          --Coordinator:FederatedEvaluation:Fraction  Agents asked to evaluate each round's model (default 0 = off).
          --Coordinator:FederatedEvaluation:MinAgents Fewest agents asked (default 1).
          --Coordinator:FederatedEvaluation:EveryRounds  Evaluate every N rounds (default 1).
          --Coordinator:FederatedEvaluation:DeadlineSeconds  Wait this long for evaluation results (default 120).
          --Coordinator:ChunkBytes                 Transfer chunk size (default 1048576).
          --Coordinator:MaxPayloadBytes            Largest accepted update (default 1 GiB).
          --Coordinator:MaxReceiveMessageBytes     gRPC receive limit (default 4 MiB; a chunk must fit).
          --Coordinator:Http2ConnectionWindowBytes HTTP/2 connection window (default 16 MiB).
          --Coordinator:Http2StreamWindowBytes     HTTP/2 stream window (default 16 MiB).
          --Coordinator:EnrollmentKey              Shared secret agents must present as well (default empty = none).
          --Coordinator:HeartbeatSeconds           Agent heartbeat interval (default 5).
          --Coordinator:AgentTimeoutSeconds        Silence after which an agent is dropped (default 30).
          --Coordinator:ReconnectGraceSeconds      Wait for an agent whose session dropped mid-round to reconnect (default 5; 0: fail it at once).
          --Coordinator:ExitWhenDone               Shut agents down and exit after the last round (default false).
          --Coordinator:Runs:RunOnStart            Start the configured run (default true); false: serve submitted runs only.
          --Coordinator:Runs:MaxActive             Most submitted runs active at once (default 8).
          --Coordinator:Admin:Token                Bearer token of the admin service (runs); empty: loopback callers only.
          --Coordinator:Admin:Enabled              Serve the admin service federated.v1.Admin (default true).
          --Coordinator:MetricsFile                Per-round CSV, relative to StateDirectory (default rounds.csv).
          --Coordinator:Compression:Uplink         Codec of the agents' model deltas, e.g. q8, topk:ratio=0.01+q8
                                                   (default none = dense float32).
          --Coordinator:Compression:ErrorFeedback  Agents carry what the uplink codec dropped to the next round (default true).
          --Coordinator:Compression:Downlink       Codec of the model deltas sent to agents whose version is known
                                                   (default none = the full dense model).

        Asynchronous training (FedBuff; off by default):
          --Coordinator:Mode                       sync (rounds, the default) | fedbuff (buffered asynchronous
                                                   aggregation; Rounds then counts buffer flushes). fedbuff needs
                                                   Strategy fedavg, Compression:Downlink none; no secure aggregation.
          --Coordinator:Async:BufferSize           K, updates per new global version (default 10).
          --Coordinator:Async:Concurrency          Agents training at once (default 20).
          --Coordinator:Async:MaxStaleness         Updates more versions behind are rejected (default 10).
          --Coordinator:Async:ServerLearningRate   Scale of the buffer's mean delta (default 1).
          --Coordinator:Async:Staleness:Function   constant | polynomial (1+s)^-A (default, A = 0.5) |
                                                   hinge (1 up to B, then 1/(A(s-B)+1)); also :A and :B.
          --Coordinator:Async:MaxContributionsPerFlush
                                                   Updates one agent may have in one buffer (default 1).
          --Coordinator:Async:MaxContributionsPerAgent
                                                   Updates one agent may contribute over the run (default 0 = no cap).
                                                   With Privacy:Enabled each flush is clipped, noised (z, Privacy:
                                                   NoiseMultiplier) and charged as one step with q = 1.
          --Coordinator:VirtualClock:Enabled       Simulations: agents' compute times drawn per agent
                                                   (:Distribution uniform | loguniform | lognormal, :Spread,
                                                   :Seconds, :Seed); virtual_s in every rounds.csv row.

        Federated continual learning (off by default):
          --Coordinator:Continual:ConsolidateFisher
                                                   Average the agents' Fisher diagonals (weighted by examples) and
                                                   send them with their anchor to the agents' EWC (default false).
          --Coordinator:Continual:Stream           The agents' stream (none | split-task | split-domain | split-class |
                                                   permuted | drift): evaluate the global model on each experience's
                                                   test split every round (accuracy_exp0.. in rounds.csv).
          --Coordinator:Continual:Experiences      Experiences of a permuted stream, steps of drift (default 10).
          --Coordinator:Continual:Seed             The stream's seed, as the agents' Client:Continual:Seed (default 0).

        Secure aggregation (SecAgg+; off by default; the coordinator sees only the sum of the updates):
          --Coordinator:SecureAggregation:Enabled            Run every round's four stages: advertise keys (signed with
                                                             each agent's enrolled Ed25519 key), share keys, masked
                                                             input, unmasking (default false).
          --Coordinator:SecureAggregation:RingBits           b: masked vectors live in Z_2^b (2..32, default 32).
          --Coordinator:SecureAggregation:ClipRange          c: coordinates of the example-weighted delta are clipped
                                                             to [-c, c] before quantisation (default 1).
          --Coordinator:SecureAggregation:Degree             k: neighbours per agent (default 0 = 2*ceil(log2 n);
                                                             at least n - 1 = the complete graph).
          --Coordinator:SecureAggregation:Threshold          t: shares that reconstruct a secret (default 0 = k/2 + 1).
          --Coordinator:SecureAggregation:StochasticRounding Unbiased rounding into the ring (default true).
          --Coordinator:SecureAggregation:ShareKeysSeconds   Stage deadlines in seconds (defaults 30, 120, 30): an
          --Coordinator:SecureAggregation:MaskedInputSeconds agent that has not answered is a dropout; training and
          --Coordinator:SecureAggregation:UnmaskSeconds      the key advertisement share RoundDeadlineSeconds.
          --Coordinator:SecureAggregation:Noise:Multiplier   z: distributed Skellam noise added by the agents, z times
                                                             the sum's L2 sensitivity (default 0 = no noise).
          --Coordinator:SecureAggregation:Noise:TargetEpsilon
                                                             Instead of Multiplier: the epsilon the run may spend; z
                                                             is calibrated for it at start-up (default 0 = off).
          --Coordinator:SecureAggregation:Noise:L2Clip       C: each agent's delta is clipped to this L2 norm (required
                                                             with noise; agents then weigh 1 each).
          --Coordinator:SecureAggregation:Noise:Delta        delta of the epsilon reported per round (default 1e-5).
          --Coordinator:SecureAggregation:MinSurvivors       Fewest survivors a (bucket) sum is unmasked with; the noise
                                                             is calibrated to it (default 0 = 1, with noise
                                                             max(t + 1, n/2)).
          --Coordinator:SecureAggregation:BucketSize         B: random buckets of B..2B-1 agents, each its own SecAgg+
                                                             instance (default 0 = one bucket).
          --Coordinator:SecureAggregation:BucketAggregator   Robust rule across the bucket means (default median).
          --Coordinator:SecureAggregation:MinBuckets         Buckets that must unmask (default 0 = more than half).
        With secure aggregation on, uplink codecs, Coordinator:Privacy (use Noise:*), Fisher consolidation, SCAFFOLD,
        FedNova, robust aggregators and update validation are refused (each needs individual updates; use BucketSize
        and BucketAggregator); a round whose survivors keep fewer than t live neighbours fails and leaves the model
        unchanged.

        Differential privacy (client-level DP-FedAvg; off by default):
          --Coordinator:Privacy:Enabled            Clip, noise and account every round (default false).
          --Coordinator:Privacy:SampleRate         q: each agent of the population joins a round independently with
                                                   probability q (Poisson sampling; replaces FractionFit, which must
                                                   stay 1, and OverSelect, which must be 0). Required.
          --Coordinator:Privacy:NoiseMultiplier    z, the noise multiplier per round; or
          --Coordinator:Privacy:TargetEpsilon      ε after Coordinator:Rounds rounds: z is calibrated (set one of the two).
          --Coordinator:Privacy:Delta              δ for ε, the calibration and the budget (default 1e-5).
          --Coordinator:Privacy:ClipBound          L2 bound C on every update (initial bound if adaptive; default 1).
          --Coordinator:Privacy:ClipOnAgents       Agents clip before upload; the coordinator checks (default false).
          --Coordinator:Privacy:EpsilonBudget      Stop before a round that would take ε above this (default 0 = none).
          --Coordinator:Privacy:Seed               Key of the noise and the sample; empty = OS entropy (default).
                                                   A seed makes runs reproducible and the noise known: simulations only.
          --Coordinator:Privacy:Adaptive:Enabled          Adaptive clipping, Andrew et al. 2021 (default false).
          --Coordinator:Privacy:Adaptive:TargetQuantile   γ, target unclipped fraction (default 0.5).
          --Coordinator:Privacy:Adaptive:LearningRate     η_C, geometric step of the bound (default 0.2).
          --Coordinator:Privacy:Adaptive:CountNoiseStddev σ_b, noise on the unclipped count; required, > z/2
                                                          (the paper suggests expected participants / 20).
        With privacy on: SCAFFOLD is refused; Population=enrolled samples every known agent (the expected cohort is
        q × population); a round releases its noised mean whatever the number of results (MinFit does not apply) and
        nothing when no result came; ε is logged and written to rounds.csv (column epsilon) after every round and the
        ledger is saved with the checkpoint before the new model leaves the coordinator; when the budget would be
        exceeded the run finishes cleanly (status finished, exit code 0 with ExitWhenDone) after the last round it
        could afford.

        Identity, TLS and limits (Coordinator:Security):
          --Coordinator:Security:Mode              keys: only agents whose Ed25519 public key is registered, or that
                                                   present a one-time enrolment token, enrol (default); open: any agent
                                                   (its key is pinned to its id; keyless agents accepted). Every keyed
                                                   enrolment and session signs a fresh one-time challenge.
          --Coordinator:Security:Plaintext         refuse (default: TLS only) | loopback (plaintext from 127.0.0.1/::1,
                                                   simulations) | allow (any peer: trusted networks only).
          --Coordinator:Security:Tls:CertificatePath  Server certificate, PEM (with KeyPath or the key inside) or .pfx.
                                                   Required while Plaintext is refuse.
          --Coordinator:Security:Tls:KeyPath       PEM private key of the certificate.
          --Coordinator:Security:Tls:Password      Password of an encrypted key or .pfx (default none).
          --Coordinator:Security:Tls:ClientCaPath  Mutual TLS: PEM CA certificates; clients must present a
                                                   certificate chaining to one (default none).
          --Coordinator:Security:AgentsFile        Agent registry, relative to StateDirectory (default agents.json).
          --Coordinator:Security:ReloadSeconds     How often the registry is re-read; revoked agents' sessions close (default 2).
          --Coordinator:Security:ChallengeSeconds  Lifetime of a challenge nonce (default 60).
          --Coordinator:Security:MaxPendingChallenges  Outstanding challenges before ResourceExhausted (default 10000).
          --Coordinator:Security:EnrolmentsPerMinute   Enrolment rate limit, 0 = none (default 600; over it: ResourceExhausted).
          --Coordinator:Security:EnrolmentBurst    Enrolments allowed at once (default = EnrolmentsPerMinute).
          --Coordinator:Security:MaxConcurrentStreams  HTTP/2 streams per connection (default 100).
          --Coordinator:Security:MaxConnections    Concurrent connections, 0 = unlimited (default 0).
          --Coordinator:Security:Reflection        Map gRPC server reflection (default true).
        The message-size limit is Coordinator:MaxReceiveMessageBytes (above). grpc.health.v1.Health answers SERVING
        once the coordinator has started (reachable without TLS, for probes).
        """;
}
