// Package deploy puts releases on a Docker Swarm and takes them back.
//
// Every change to an environment (a deploy, a rollback, a scale, a secret
// rotation) is a Change run through the same pipeline (Session.Run, in
// change.go, reads top-down in this order):
//
//  1. preflight: every check runs and prints one line, those that need
//     neither the engine nor a registry first (flags, the git tree, the
//     release tag), then the registry, the endpoint, the lock and the live
//     stack; a check that cannot run says what it waits for. Any failure
//     stops the change before anything is touched (exit 1);
//  2. plan: the desired services, computed with the docker CLI's own stack
//     loader and converter and pinned to image digests, diffed against the
//     live stack; for a deploy, the release's pending migrations, asked of
//     the database by a job; -dryrun stops here;
//  3. apply through the Engine API, under the lock: the dependencies, then
//     the release's migrations (a deploy only, once, as a job), then the
//     release's services; a change that fails before any service changed
//     exits 1, with nothing to restore;
//  4. converge: wait until every touched service runs this change's spec,
//     healthy, and Swarm reports this change's update completed; fail on a
//     rollback, a pause, failing tasks or the deadline; then the smoke check;
//  5. on failure (or Ctrl-C, or a panic), restore every touched service to
//     the spec it had before, whole stack, and wait for that (exit 2; 3 when
//     the restore does not converge);
//  6. record the change in the Swarm itself (package ledger) and send its
//     events (package notify).
//
// The parts it stands on have packages of their own: envfile (the
// environments file), endpoint (reaching a manager), converge (judging
// Swarm's state), ledger (records and the lock) and notify (webhooks).
package deploy
