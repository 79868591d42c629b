package channels

// Action is what a decision does, or what an operation did.
type Action string

const (
	ActionNone     Action = "none"     // nothing to do
	ActionWait     Action = "wait"     // a release is there, but not for this install yet
	ActionInstall  Action = "install"  // nothing installed yet
	ActionUpgrade  Action = "upgrade"  // a newer release
	ActionRollback Action = "rollback" // back to an older release (halted, or asked for)
	ActionRecover  Action = "recover"  // finishing or undoing an interrupted operation
)

// Result is how an operation ended.
type Result string

const (
	Success Result = "success"
	// RolledBack: it failed, and the install was switched back.
	RolledBack Result = "rolled_back"
	// Failed: it failed before anything changed.
	Failed Result = "failed"
)
