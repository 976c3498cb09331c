/*-------------------------------------------------------------------------
 *
 * conflict.c
 *	  Recovery conflicts on a hot standby, met by an executor as its
 *	  sessions' own backends would meet them.
 *
 * When replay needs what a backend holds (a snapshot, a lock, a buffer
 * pin, a temp file's tablespace, a database), the startup process waits
 * up to max_standby_streaming_delay, then signals the holder (SIGUSR1),
 * and core's RecoveryConflictInterrupt asks for a cancel or for the
 * backend's end.  In an executor the holder is the one session inside its
 * transaction, so what core does to a backend is done to that session
 * alone:
 *
 * - A statement running in a top-level transaction is cancelled with
 *   core's ERROR 40001 "canceling statement due to conflict with
 *   recovery"; the session carries on.  Nothing to do here: core's
 *   ProcessInterrupts raises it, the executor's error recovery reports it.
 * - A session inside a subtransaction, or idle in its transaction (core:
 *   reading a command), is ended with core's FATAL 40001.  Core's FATAL
 *   would end the executor and every session on it, so the signal handler
 *   notes the case and turns the backend's end into a cancel; the error
 *   recovery then ends that session with core's FATAL instead of the
 *   cancel's ERROR (bp_conflict_end_session).
 * - A database dropped (or moved) ends every backend connected to it: the
 *   executor ends by core's FATAL (57P04), and tells each of its sessions
 *   the same (bp_conflict_exit_message).  In a subtransaction this case
 *   looks like the one above, and ends that session first; replay signals
 *   again every few milliseconds, and the next signal ends the executor.
 *
 * On a standby the executor never waits for an idle transaction's next
 * message in a blocking read (executor.c asks bp_conflict_possible), so a
 * conflict is acted on at once: replay waits for a pooled session no
 * longer than for a backend.
 *
 * Core keeps the conflict's state (RecoveryConflictPending, its reason)
 * static in postgres.c; the handler tells the cases apart by what core's
 * handler changed, ProcDiePending or QueryCancelPending: nothing else a
 * SIGUSR1 brings sets them.  A plpgsql EXCEPTION block may catch the
 * cancel, as it may catch core's own; replay then signals again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/procsignal.h"
#include "utils/memutils.h"

#include "conflict.h"
#include "session.h"
#include "startup.h"

#define CONFLICT_MESSAGE	"terminating connection due to conflict with recovery"

/* set in the signal handler, read and cleared by the executor */
static volatile sig_atomic_t end_session = false;	/* core would end the
													 * backend */
static volatile sig_atomic_t while_idle = false;	/* ... as it read a
													 * command */
static volatile sig_atomic_t database_gone = false;

/* the executor waits for the current session's next message in a transaction */
static volatile sig_atomic_t waiting_in_xact = false;

/*
 * The executor's SIGUSR1: core's handler, then what a backend's end would
 * have been becomes a cancel of the session's statement or wait (see the
 * header comment).  Core's RecoveryConflictInterrupt reads the transaction
 * state in the handler too.
 */
void
bp_conflict_sigusr1(SIGNAL_ARGS)
{
	bool		die_before = ProcDiePending;
	bool		cancel_before = QueryCancelPending;

	procsignal_sigusr1_handler(postgres_signal_arg);

	if (ProcDiePending && !die_before)
	{
		if (IsTransactionOrTransactionBlock() && IsSubTransaction())
		{
			ProcDiePending = false;
			QueryCancelPending = true;
			InterruptPending = true;
			end_session = true;
		}
		else
			database_gone = true;	/* only that conflict ends us outside */
	}
	else if (QueryCancelPending && !cancel_before && waiting_in_xact)
	{
		end_session = true;
		while_idle = true;
	}
}

/*
 * Can replay conflict with what a session holds?  Only during recovery;
 * cheap once it has ended (RecoveryInProgress caches that).
 */
bool
bp_conflict_possible(void)
{
	return RecoveryInProgress();
}

/* The executor starts (in_xact) or stops waiting for the session's input */
void
bp_conflict_waiting(bool in_xact)
{
	waiting_in_xact = in_xact;
}

/* A new turn, or an error handled: nothing noted is left for the next one */
void
bp_conflict_reset(void)
{
	waiting_in_xact = false;
	end_session = false;
	while_idle = false;
}

/*
 * Called by the executor's error recovery, before the error is reported:
 * if it is the cancel of a conflict after which core would have ended the
 * backend, sends the current session core's FATAL instead (the error's
 * detail, and for an idle transaction core's hint), logs it, and marks the
 * session for closing; returns true then.  Otherwise (no such conflict,
 * or another error came first) returns false and the caller reports the
 * error as usual; replay signals again if it still waits.
 */
bool
bp_conflict_end_session(void)
{
	bool		idle = while_idle;
	bool		ours = false;
	ErrorData  *edata;
	MemoryContext old;

	if (!end_session || bp_current == NULL)
		return false;
	end_session = false;
	while_idle = false;

	old = MemoryContextSwitchTo(TopMemoryContext);
	edata = CopyErrorData();
	MemoryContextSwitchTo(old);
	if (edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE)
	{
		bp_session_send_fatal_detail(ERRCODE_T_R_SERIALIZATION_FAILURE,
									 CONFLICT_MESSAGE, edata->detail,
									 idle ? "In a moment you should be able to reconnect to the database and repeat your command." : NULL);
		ours = true;
	}
	FreeErrorData(edata);
	return ours;
}

/*
 * The message an exiting executor sends its sessions when a database
 * conflict ends it (core's FATAL to each backend); false for any other end.
 */
bool
bp_conflict_exit_message(StringInfo buf)
{
	if (!database_gone)
		return false;
	bp_build_error(buf, "FATAL", ERRCODE_DATABASE_DROPPED, CONFLICT_MESSAGE,
				   "User was connected to a database that must be dropped.",
				   NULL);
	return true;
}
