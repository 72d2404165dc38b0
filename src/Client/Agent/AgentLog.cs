using Grpc.Core;

namespace Federated.Client.Agent;

/// <summary>The agent's source-generated log messages (event ids 2000–2099).</summary>
internal static partial class AgentLog
{
    [LoggerMessage(EventId = 2000, Level = LogLevel.Information, Message = "Agent {AgentId} starting: {Compute}")]
    public static partial void Starting(ILogger logger, string agentId, string compute);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Local data {Name}: {Examples} examples, {Classes} classes, labels {Histogram}")]
    public static partial void DataLoaded(ILogger logger, string name, int examples, int classes, string histogram);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Critical, Message = "The agent cannot start: {Reason}")]
    public static partial void StartFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "Enrolling with {Address} as {AgentId} (protocol {Version})")]
    public static partial void Connecting(ILogger logger, Uri address, string agentId, uint version);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Information, Message = "Enrolled as {AgentId} in run {RunId}: heartbeat every {HeartbeatSeconds} s, upload chunks of {ChunkBytes} bytes")]
    public static partial void Enrolled(ILogger logger, string agentId, string runId, double heartbeatSeconds, int chunkBytes);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Critical, Message = "The coordinator refused this agent ({Code}: {Detail}); retrying cannot help, stopping")]
    public static partial void EnrollRefused(ILogger logger, StatusCode code, string detail);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Information, Message = "Session open; coordinator run {RunId} at round {Round}")]
    public static partial void Welcome(ILogger logger, string runId, int round);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Warning, Message = "Connection to the coordinator lost ({Reason}); reconnecting in {DelaySeconds:F2} s (attempt {Attempt})")]
    public static partial void Reconnecting(ILogger logger, string reason, double delaySeconds, int attempt);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Information, Message = "The coordinator closed the session")]
    public static partial void SessionClosed(ILogger logger);

    [LoggerMessage(EventId = 2009, Level = LogLevel.Information, Message = "Shutdown requested by the coordinator: {Reason}")]
    public static partial void Shutdown(ILogger logger, string reason);

    [LoggerMessage(EventId = 2010, Level = LogLevel.Critical, Message = "Unexpected failure; stopping the agent")]
    public static partial void UnexpectedFailure(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2011, Level = LogLevel.Information, Message = "Generated agent id {AgentId} (kept in {Path})")]
    public static partial void AgentIdGenerated(ILogger logger, string agentId, string path);

    [LoggerMessage(EventId = 2012, Level = LogLevel.Information, Message = "Restored state from {Path}: agent {AgentId}, last round {Round}, model {Model}")]
    public static partial void StateRestored(ILogger logger, string path, string agentId, int round, string model);

    [LoggerMessage(EventId = 2020, Level = LogLevel.Information, Message = "Task {TaskId}: training round {Round} ({Model}, {Epochs} epochs, batch {BatchSize}, {Optimizer} lr {LearningRate})")]
    public static partial void TrainStarted(ILogger logger, string taskId, int round, string model, int epochs, int batchSize, string optimizer, double learningRate);

    [LoggerMessage(EventId = 2021, Level = LogLevel.Information, Message = "Task {TaskId}: round {Round} done on {Examples} examples in {TrainSeconds:F2} s ({Steps} steps), loss {Loss:F4}, accuracy {Accuracy:P1}")]
    public static partial void TrainDone(ILogger logger, string taskId, int round, int examples, double trainSeconds, long steps, double loss, double accuracy);

    [LoggerMessage(EventId = 2022, Level = LogLevel.Error, Message = "Task {TaskId} (round {Round}) failed: {Error}")]
    public static partial void TaskFailed(ILogger logger, string taskId, int round, string error, Exception exception);

    [LoggerMessage(EventId = 2023, Level = LogLevel.Information, Message = "Task {TaskId}: evaluating round {Round} ({Model})")]
    public static partial void EvaluateStarted(ILogger logger, string taskId, int round, string model);

    [LoggerMessage(EventId = 2024, Level = LogLevel.Information, Message = "Task {TaskId}: round {Round} evaluation on {Examples} examples, loss {Loss:F4}, accuracy {Accuracy:P1}")]
    public static partial void EvaluateDone(ILogger logger, string taskId, int round, long examples, double loss, double accuracy);

    [LoggerMessage(EventId = 2025, Level = LogLevel.Information, Message = "Waiting {Seconds:F1} s: {Reason}")]
    public static partial void Wait(ILogger logger, double seconds, string reason);

    [LoggerMessage(EventId = 2026, Level = LogLevel.Information, Message = "Reconfigured: {Settings}")]
    public static partial void Reconfigure(ILogger logger, string settings);

    [LoggerMessage(EventId = 2027, Level = LogLevel.Warning, Message = "Reconfigure: ignoring threads='{Value}' (expected a positive whole number)")]
    public static partial void ReconfigureIgnored(ILogger logger, string value);

    [LoggerMessage(EventId = 2028, Level = LogLevel.Warning, Message = "The coordinator rejected the result of task {TaskId}: {Reason}")]
    public static partial void ResultRejected(ILogger logger, string taskId, string reason);

    [LoggerMessage(EventId = 2029, Level = LogLevel.Debug, Message = "Ignoring a coordinator message of kind {Kind}")]
    public static partial void UnknownMessage(ILogger logger, Protocol.V1.CoordinatorMessage.KindOneofCase kind);

    [LoggerMessage(EventId = 2031, Level = LogLevel.Information, Message = "Task {TaskId} (round {Round}) sent again after a reconnect; its update was already delivered")]
    public static partial void TaskAlreadyDelivered(ILogger logger, string taskId, int round);

    [LoggerMessage(EventId = 2030, Level = LogLevel.Warning, Message = "Could not persist the agent state to {Directory}: {Reason}")]
    public static partial void PersistFailed(ILogger logger, string directory, string reason);

    [LoggerMessage(EventId = 2040, Level = LogLevel.Information, Message = "Downloaded {TransferId}: {Bytes} bytes in {Seconds:F2} s")]
    public static partial void Downloaded(ILogger logger, string transferId, long bytes, double seconds);

    [LoggerMessage(EventId = 2041, Level = LogLevel.Information, Message = "Uploaded {TransferId}: {Bytes} bytes in {Chunks} chunks in {Seconds:F2} s")]
    public static partial void Uploaded(ILogger logger, string transferId, long bytes, int chunks, double seconds);

    [LoggerMessage(EventId = 2042, Level = LogLevel.Warning, Message = "{Direction} of {TransferId} broke ({Reason}); resuming at chunk {Sequence} (retry {Retry} of {MaxRetries})")]
    public static partial void TransferRetry(ILogger logger, string direction, string transferId, string reason, int sequence, int retry, int maxRetries);

    [LoggerMessage(EventId = 2050, Level = LogLevel.Information, Message = "Built model {Model}: layout {Fingerprint}, {Length} weights, {Compute}")]
    public static partial void ModelBuilt(ILogger logger, string model, string fingerprint, long length, string compute);

    [LoggerMessage(EventId = 2051, Level = LogLevel.Information, Message = "Restored the local model from {Path} (layout {Fingerprint})")]
    public static partial void ModelRestored(ILogger logger, string path, string fingerprint);

    [LoggerMessage(EventId = 2052, Level = LogLevel.Warning, Message = "Dropping {Count} local strategy tensors kept for layout {Old}: the model now has layout {New}")]
    public static partial void LocalStateDropped(ILogger logger, int count, string old, string @new);

    [LoggerMessage(EventId = 2053, Level = LogLevel.Information, Message = "Restored the upload error-feedback residual from {Path} (norm {Norm:G4})")]
    public static partial void ResidualRestored(ILogger logger, string path, double norm);

    [LoggerMessage(EventId = 2054, Level = LogLevel.Warning, Message = "Dropping the upload error-feedback residual kept for layout {Old}: the model now has layout {New}")]
    public static partial void ResidualDropped(ILogger logger, string old, string @new);
    [LoggerMessage(EventId = 2070, Level = LogLevel.Warning, Message = "Agent {AgentId} is Byzantine: {Attack}")]
    public static partial void AttackConfigured(ILogger logger, string agentId, string attack);

    [LoggerMessage(EventId = 2071, Level = LogLevel.Information, Message = "Task {TaskId}: round {Round} attack {Kind} on {References} reference updates; update norm {HonestNorm:G4} -> {SentNorm:G4}")]
    public static partial void AttackApplied(ILogger logger, string taskId, int round, string kind, int references, double honestNorm, double sentNorm);

    [LoggerMessage(EventId = 2072, Level = LogLevel.Warning, Message = "Task {TaskId}: no honest update of round {Round} came within {Seconds} s; the attack works around this agent's own delta")]
    public static partial void NoHonestUpdates(ILogger logger, string taskId, int round, double seconds);

    [LoggerMessage(EventId = 2060, Level = LogLevel.Warning, Message = "Task {TaskId} of round {Round} dropped on purpose (simulated dropout)")]
    public static partial void SimulatedDropout(ILogger logger, string taskId, int round);

    [LoggerMessage(EventId = 2080, Level = LogLevel.Information, Message = "Agent {AgentId} identity: Ed25519 public key {PublicKey} ({Path}, {How}); an administrator registers it with 'federated-coordinator agents register {AgentId} {PublicKey}'")]
    public static partial void Identity(ILogger logger, string agentId, string publicKey, string path, string how);

    [LoggerMessage(EventId = 2081, Level = LogLevel.Warning, Message = "The coordinator does not issue challenges (an older coordinator): enrolling without a key")]
    public static partial void KeylessEnrolment(ILogger logger);

    [LoggerMessage(EventId = 2200, Level = LogLevel.Information, Message = "Training paused: {Reason}")]
    public static partial void TrainingPaused(ILogger logger, string reason);

    [LoggerMessage(EventId = 2201, Level = LogLevel.Information, Message = "Training resumed after {Seconds:F1} s")]
    public static partial void TrainingResumed(ILogger logger, double seconds);

    [LoggerMessage(EventId = 2202, Level = LogLevel.Information, Message = "Device auto: no CUDA ({Reason}); training on the CPU")]
    public static partial void DeviceFallback(ILogger logger, string reason);

    [LoggerMessage(EventId = 2203, Level = LogLevel.Information, Message = "Task {TaskId}: update {TransferId} of round {Round} sealed ({Bytes} bytes) and kept until delivered")]
    public static partial void PendingSaved(ILogger logger, string taskId, string transferId, int round, long bytes);

    [LoggerMessage(EventId = 2204, Level = LogLevel.Information, Message = "Resuming the pending upload {TransferId} of task {TaskId} (round {Round}) left by an earlier run")]
    public static partial void PendingResuming(ILogger logger, string transferId, string taskId, int round);

    [LoggerMessage(EventId = 2205, Level = LogLevel.Information, Message = "Delivered {TransferId} (round {Round}) and its result")]
    public static partial void PendingDelivered(ILogger logger, string transferId, int round);

    [LoggerMessage(EventId = 2206, Level = LogLevel.Warning, Message = "Dropping the pending upload {TransferId}: {Reason}")]
    public static partial void PendingDropped(ILogger logger, string transferId, string reason);

    [LoggerMessage(EventId = 2207, Level = LogLevel.Information, Message = "Recovered {Count} pending upload(s) from {Path}; they are delivered when the coordinator is reachable")]
    public static partial void PendingRecovered(ILogger logger, int count, string path);

    [LoggerMessage(EventId = 2208, Level = LogLevel.Information, Message = "Resources: {Limits}")]
    public static partial void ResourceLimits(ILogger logger, string limits);

    [LoggerMessage(EventId = 2209, Level = LogLevel.Information, Message = "Round {Round}: experience {Experience} of {Experiences} ({Examples} examples){Consolidated}")]
    public static partial void ContinualExperience(ILogger logger, int round, int experience, int experiences, int examples, string consolidated);

    [LoggerMessage(EventId = 2210, Level = LogLevel.Information, Message = "Training in {Precision} on {Device}{Note}")]
    public static partial void TrainingPrecision(ILogger logger, string precision, string device, string note);

    [LoggerMessage(EventId = 2211, Level = LogLevel.Information, Message = "Memory budget: the replay buffer keeps up to {Examples} examples ({Bytes} bytes at {ExampleBytes} bytes each) of its {ShareBytes}-byte share of the {BudgetBytes}-byte budget")]
    public static partial void ReplaySized(ILogger logger, int examples, long bytes, long exampleBytes, long shareBytes, long budgetBytes);

    [LoggerMessage(EventId = 2212, Level = LogLevel.Warning, Message = "Memory budget: Client:Continual:ReplayBudget {Configured} examples ({ConfiguredBytes} bytes) do not fit the replay buffer's {ShareBytes}-byte share of the {BudgetBytes}-byte budget; it keeps {Examples} examples ({Bytes} bytes)")]
    public static partial void ReplayClamped(ILogger logger, int configured, long configuredBytes, long shareBytes, long budgetBytes, int examples, long bytes);

    [LoggerMessage(EventId = 2400, Level = LogLevel.Information, Message = "Task {TaskId} (round {Round}): secure-aggregation stage '{Stage}' answered")]
    public static partial void SecAggStage(ILogger logger, string taskId, int round, string stage);

    [LoggerMessage(EventId = 2401, Level = LogLevel.Warning, Message = "Task {TaskId} (round {Round}): simulated secure-aggregation dropout, silent from stage '{Stage}' on")]
    public static partial void SecAggSilent(ILogger logger, string taskId, int round, string stage);

    [LoggerMessage(EventId = 2402, Level = LogLevel.Information, Message = "Secure-aggregation stage of task {TaskId} (round {Round}) ignored: it is not the round this agent holds keys for")]
    public static partial void SecAggStale(ILogger logger, string taskId, int round);
}
