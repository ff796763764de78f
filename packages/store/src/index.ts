export {
  canTransition,
  isTerminal,
  jobStatuses,
  jobTransitions,
  statusesLeadingTo,
  terminalStatuses,
} from "./jobs/states.js";
export type { JobStatus } from "./jobs/states.js";
export { openStore } from "./open-store.js";
export { newJobRow } from "./jobs/rows.js";
export type { OpenStoreOptions } from "./open-store.js";
export { SqliteStore } from "./sqlite/sqlite-store.js";
export type { SqliteStoreOptions } from "./sqlite/sqlite-store.js";
export { PostgresStore } from "./postgres/postgres-store.js";
export type { PostgresStoreOptions } from "./postgres/postgres-store.js";
export { apiKeyScopes } from "./accounts/types.js";
export { ledgerAccounts, ledgerKinds, moneyStates, moneyTransitions } from "./ledger/types.js";
export type {
  BasisPoints,
  JobEscrow,
  JobMoney,
  LedgerAccount,
  LedgerKind,
  LedgerStore,
  HeldRelease,
  LedgerTransfer,
  LedgerTxRow,
  MoneyState,
  Posting,
  PostResult,
  PriceTerms,
  SettleCandidate,
  SettleJobInput,
  SettleJobResult,
  SettlementSealer,
  StakeSubject,
  TransactionQuery,
} from "./ledger/types.js";
export { chargeFor, insufficientFunds } from "./ledger/rows.js";
export type {
  AccountRole,
  AccountRow,
  AccountStore,
  ApiKeyRow,
  ApiKeyScope,
  CreateAccountResult,
  NewAccount,
  NewApiKey,
  NewSession,
  SessionRow,
  UseSessionResult,
} from "./accounts/types.js";
export type {
  AdmissionOutcome,
  AdmissionLease,
  ClaimedAttempt,
  ClaimRequest,
  CompleteJobInput,
  CompleteJobResult,
  EndedAttempt,
  FailAttemptInput,
  InsufficientFunds,
  JobRow,
  JobStore,
  NewJob,
  ReceiptSealer,
  RouteDecision,
  SealRequest,
} from "./jobs/types.js";
export type {
  AvailabilityPromise,
  EpochInput,
  EpochOutcome,
  NodeRow,
  NodeStore,
  ReputationEvent,
  UpsertNodeInput,
  UpsertNodeResult,
} from "./nodes/types.js";
export { proposalStates, voteChoices } from "./governance/types.js";
export type {
  DecideInput,
  GovernanceStore,
  HoldRow,
  NewProposal,
  ParamRow,
  ProposalEffects,
  ProposalRow,
  ProposalState,
  Tally,
  VoteChoice,
  VoteResult,
  VoteRow,
} from "./governance/types.js";
export type { LogEntry, LogHead, LogStore, NewCoordinatorKey } from "./log/types.js";
export type { NewWorkflow, PublishResult, WorkflowEarning, WorkflowRow, WorkflowStore } from "./workflows/types.js";
export type { Store, StoreCapabilities, StoreNotification } from "./types.js";
