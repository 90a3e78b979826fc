import Foundation
import Testing
import ChildProcess
import TestSupport

/// `Type=notify`: coordinators (active and standby) and workers tell systemd when they are up
/// and when they stop, on the socket systemd names in NOTIFY_SOCKET (a listener of the test's
/// own here), and the units in Deploy/systemd pass `systemd-analyze verify`.
@Suite(.serialized) struct SystemdNotifyTests {
    @Test func servicesSayWhenTheyAreReadyAndWhenTheyStop() throws {
        let conninfo = try TestDatabase.create("notify")
        let directory = NSTemporaryDirectory() + "oversight-notify-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func coordinator(_ label: String, _ listener: NotifyListener) throws -> (RunningProcess, String) {
            let workers = "tcp://127.0.0.1:\(freeLoopbackPort())"
            let process = try RunningProcess(["coordinator", "--database", conninfo, "--worker-endpoint", workers,
                                              "--client-endpoint", "tcp://127.0.0.1:\(freeLoopbackPort())"],
                                             logPath: directory + "/\(label).log", environment: ["NOTIFY_SOCKET": listener.path])
            return (process, workers)
        }
        let activeSocket = try NotifyListener(), standbySocket = try NotifyListener(abstract: true), workerSocket = try NotifyListener()
        let (active, endpoint) = try coordinator("active", activeSocket)
        defer { active.stop() }
        let ready = try activeSocket.waitFor("READY=1")
        #expect(ready.contains("STATUS=active"), "\(ready)")
        #expect(active.log.contains("coordinator listening"), "ready only once it listens: \(active.log)")
        // A standby is up too (leadership is a metric, not readiness); its socket is abstract.
        let (standby, _) = try coordinator("standby", standbySocket)
        defer { standby.stop() }
        #expect(try standbySocket.waitFor("READY=1").contains("STATUS=standby"))
        let worker = try RunningProcess(["worker", "--coordinator", endpoint, "--database", conninfo, "--name", "notify-1"],
                                        logPath: directory + "/worker.log", environment: ["NOTIFY_SOCKET": workerSocket.path])
        defer { worker.stop() }
        try workerSocket.waitFor("READY=1")
        try active.waitForLog("worker ready")
        // SIGTERM: each says it is stopping, then exits cleanly.
        for (process, socket) in [(worker, workerSocket), (standby, standbySocket), (active, activeSocket)] {
            process.process.terminate()
            try socket.waitFor("STOPPING=1")
            #expect(process.stop(grace: 30) == 0, "\(process.log)")
        }
    }

    @Test func theUnitsVerify() throws {
        let analyze = "/usr/bin/systemd-analyze"
        try #require(FileManager.default.isExecutableFile(atPath: analyze), "systemd-analyze (Debian's systemd) is installed by Deploy/local/install-dependencies.sh")
        let directory = NSTemporaryDirectory() + "oversight-units-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let units = FileManager.default.currentDirectoryPath + "/Deploy/systemd"
        for name in ["oversight-coordinator.service", "oversight-worker@.service"] {
            var text = try String(contentsOfFile: units + "/" + name, encoding: .utf8)
            #expect(text.contains("Type=notify") && text.contains("NotifyAccess=main"), "\(name) is a notify unit")
            // Verified against the binary as built here, where the unit says /usr/local/bin.
            text = text.replacingOccurrences(of: "/usr/local/bin/oversight", with: OversightBinary.path)
            let unit = directory + "/" + (name.contains("@") ? "oversight-worker@1.service" : name)
            try text.write(toFile: unit, atomically: true, encoding: .utf8)
            if name.contains("@") { try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8) }
            let (status, output) = try ChildProcess.run([analyze, "verify", "--man=no", unit])
            #expect(status == 0 && output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "systemd-analyze verify \(name): \(output)")
        }
    }
}
