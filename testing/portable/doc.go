// Package portable holds the tests of the portable submission path: the
// recount and the streaming job submitted as `--runner flink` submits them
// (runners.Run over Beam's universal runner) to a job service in another
// process (testing/prismjobservice), whose workers run in processes of their
// own (PROCESS environment, Beam's Go boot program). It has no code of its
// own.
package portable
