import ArgumentParser

@main
struct Oversight: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oversight",
        abstract: "Assess surveillance-AI deployments against the EU AI Act, GDPR and your own criteria, at batch scale, with an audit trail in PostgreSQL.",
        discussion: """
            A coordinator takes batches and dispatches jobs over ZeroMQ to workers on any number of machines; workers score each deployment and write the results to PostgreSQL.

            Quick start:  oversight demo Real use:     oversight coordinator --database URL
                          oversight worker --coordinator tcp://HOST:5555 --database URL
                          oversight submit deployments.jsonl \\
                              --coordinator tcp://HOST:5556 --wait
            """,
        version: OversightVersion.string,
        subcommands: [
            CoordinatorCommand.self, WorkerCommand.self, SubmitCommand.self, StatusCommand.self,
            ResultsCommand.self, ExplainCommand.self, CriteriaCommand.self, ImportCommand.self, MigrateCommand.self,
            DeadLettersCommand.self, RetryCommand.self, CancelCommand.self, ReassessCommand.self, QuestionsCommand.self, ReportCommand.self, ServeCommand.self, ConsoleUserCommand.self,
            KeysCommand.self, AuditCommand.self, GrantReaderCommand.self, GrantServiceCommand.self,
            DemoCommand.self, GenerateCommand.self, BenchCommand.self, LocalDatabaseCommand.self,
        ])
}
