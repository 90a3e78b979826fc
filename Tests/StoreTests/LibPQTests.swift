import Testing
import LibPQ
import TestSupport

@Suite struct LibPQTests {
    static let hostile = [
        "'; DROP TABLE t; --", "\"quoted\"", "back\\slash", "tab\tnew\nline\rcr", "$1 $2", "ünïcødé 🚨",
        String(repeating: "long ", count: 20_000), "", "E'\\x00'", "%s %n",
    ]

    @Test func boundParametersCarryHostileStringsIntact() throws {
        let db = try PGConnection(try TestDatabase.create("params"))
        try db.query("CREATE TABLE t (id int, s text)")
        for (i, s) in Self.hostile.enumerated() {
            try db.query("INSERT INTO t VALUES (\(i), \(s))")
        }
        let rows = try db.query("SELECT id, s FROM t ORDER BY id")
        #expect(rows.rowCount == Self.hostile.count)
        for i in 0..<rows.rowCount { #expect(rows.string(i, 1) == Self.hostile[i]) }
        #expect(try db.query("SELECT count(*) FROM t WHERE s = \(Self.hostile[0])").int(0, 0) == 1)
    }

    @Test func nullsBytesAndNumbersRoundTrip() throws {
        let db = try PGConnection(try TestDatabase.create("types"))
        let bytes: [UInt8] = [0, 1, 0xFF, 0x5C, 0x27]
        let none: String? = nil
        let row = try db.query("SELECT \(bytes)::bytea, \(none)::text, \(Int64.max)::bigint, \(true)::boolean, \(2.5)::float8")
        #expect(row.bytes(0, 0) == bytes)
        #expect(row.isNull(0, 1))
        #expect(row.int64(0, 2) == Int64.max)
        #expect(row.bool(0, 3) == true)
        #expect(row.double(0, 4) == 2.5)
    }

    @Test func copyStreamsHostileRows() throws {
        let db = try PGConnection(try TestDatabase.create("copy"))
        try db.query("CREATE TABLE c (n bigint, s text, b bytea, f boolean)")
        let count = try db.copyIn("COPY c (n, s, b, f) FROM STDIN") { w in
            for i in 0..<50_000 {
                w.add(Int64(i)); w.add(Self.hostile[i % Self.hostile.count]); w.add(bytea: [UInt8(i & 0xFF), 0x5C]); w.add(i % 2 == 0 ? true : nil)
                try w.endRow()
            }
        }
        #expect(count == 50_000)
        let rows = try db.query("SELECT n, s, b, f FROM c WHERE n < 10 ORDER BY n")
        for i in 0..<10 {
            #expect(rows.string(i, 1) == Self.hostile[i])
            #expect(rows.bytes(i, 2) == [UInt8(i), 0x5C])
            #expect(rows.isNull(i, 3) == (i % 2 == 1))
        }
    }

    /// Binary COPY (the workers' result rows): every type it writes, hostile text, NULLs, the
    /// integers' limits, and arrays with what a text-format literal would have to quote; more
    /// than one 256 KiB chunk, so rows span chunks.
    @Test func binaryCopyRoundTripsEveryTypeItWrites() throws {
        let db = try PGConnection(try TestDatabase.create("binarycopy"))
        try db.query("CREATE TABLE c (u uuid, n bigint, i integer, s smallint, t text, b bytea, f boolean, a text[])")
        let uuid = "0b7f2c4e-8d1a-4c3b-9e5F-2a6d8c1b4e70"
        let arrays: [[String]] = [[], ["one"], ["a,b", "{c}", "\"q\"", "back\\slash", "NULL", "", "ünï 🚨", "nul\u{0}gone"]]
        let count = try db.copyInBinary("COPY c (u, n, i, s, t, b, f, a) FROM STDIN (FORMAT binary)", fields: 8) { w in
            for k in 0..<3_000 {
                w.add(uuid: Array(uuid.utf8))
                w.add(int8: k == 0 ? Int64.min : k == 1 ? Int64.max : Int64(k))
                w.add(int4: k == 0 ? Int32.min : Int32(k))
                w.add(int2: k == 0 ? Int16.min : k == 1 ? Int16.max : Int16(k % 1000))
                w.add(text: k % 7 == 6 ? nil : Self.hostile[k % Self.hostile.count])
                w.add(bytea: [UInt8(k & 0xFF), 0x00, 0x5C])
                w.add(bool: k % 3 == 0 ? nil : k % 3 == 1)
                w.add(textArray: arrays[k % arrays.count])
                try w.endRow()
            }
        }
        #expect(count == 3_000)
        let rows = try db.query("SELECT u::text, n, i, s, t, b, f, a::text, cardinality(a), a[8] FROM c ORDER BY n")
        #expect(rows.rowCount == 3_000)
        #expect(rows.string(0, 0) == uuid.lowercased())
        #expect(rows.int64(0, 1) == Int64.min && rows.int64(2_999, 1) == Int64.max)
        #expect(rows.int64(0, 2) == Int64(Int32.min) && rows.int(0, 3) == Int(Int16.min))
        for r in 1..<2_999 {
            let k = r + 1  // row 0 is k = 0 (Int64.min), the last is k = 1 (Int64.max)
            #expect(rows.int64(r, 1) == Int64(k))
            #expect(rows.string(r, 4) == (k % 7 == 6 ? nil : Self.hostile[k % Self.hostile.count]))
            #expect(rows.bytes(r, 5) == [UInt8(k & 0xFF), 0x00, 0x5C])
            #expect(rows.bool(r, 6) == (k % 3 == 0 ? nil : k % 3 == 1))
            #expect(rows.int(r, 8) == arrays[k % arrays.count].count)
        }
        let withQuotes = try db.query("SELECT a FROM c WHERE cardinality(a) = 8 LIMIT 1")
        #expect(withQuotes.string(0, 0) == #"{"a,b","{c}","\"q\"","back\\slash","NULL","","ünï 🚨",nulgone}"#)
        #expect(try db.query("SELECT count(*) FROM c WHERE a = '{}'").int(0, 0) == 1_000)
    }

    @Test func integersAndByteaAreReadExactly() throws {
        let db = try PGConnection(try TestDatabase.create("numbers"))
        let row = try db.query("""
            SELECT (-9223372036854775808)::int8, 9223372036854775807::int8, 0::int8, (-1)::int8, NULL::int8,
                   '\\x'::bytea, '\\x00ff10ab'::bytea, NULL::bytea, 'x9'::text
            """)
        #expect(row.int64(0, 0) == Int64.min)
        #expect(row.int64(0, 1) == Int64.max)
        #expect(row.int64(0, 2) == 0)
        #expect(row.int64(0, 3) == -1)
        #expect(row.int64(0, 4) == nil)
        #expect(row.bytes(0, 5) == [])
        #expect(row.bytes(0, 6) == [0x00, 0xFF, 0x10, 0xAB])
        #expect(row.bytes(0, 7) == nil)
        #expect(row.int64(0, 8) == nil)
        #expect(row.int(0, 3) == -1)
    }

    /// The COPY writer scans eight bytes at a time: characters it must escape, at every offset
    /// within and across those words, arrive intact.
    @Test func copyEscapesAtEveryOffset() throws {
        let db = try PGConnection(try TestDatabase.create("copyoffsets"))
        try db.query("CREATE TABLE o (n bigint, s text)")
        var random = SplitMix64(seed: 21)
        let alphabet = ["a", "\\", "\t", "\n", "\r", "é", "x", "\\\\", "\"", "7"]
        let texts: [String] = (0..<3_000).map { _ in
            String((0..<Int(random.next() % 41)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }.joined())
        }
        _ = try db.copyIn("COPY o (n, s) FROM STDIN") { w in
            for (i, text) in texts.enumerated() {
                w.add(Int64(i)); w.add(text)
                try w.endRow()
            }
        }
        let rows = try db.query("SELECT s FROM o ORDER BY n")
        #expect(rows.rowCount == texts.count)
        for i in 0..<texts.count where rows.string(i, 0) != texts[i] {
            Issue.record("row \(i): \(texts[i].debugDescription) came back as \(String(describing: rows.string(i, 0)).debugDescription)")
        }
    }

    @Test func copyErrorsCarrySQLStateAndLeaveTheConnectionUsable() throws {
        let db = try PGConnection(try TestDatabase.create("copyerr"))
        try db.query("CREATE TABLE u (n int PRIMARY KEY)")
        #expect {
            try db.copyIn("COPY u (n) FROM STDIN") { w in
                w.add(1); try w.endRow(); w.add(1); try w.endRow()
            }
        } throws: { ($0 as? PQError)?.sqlState == "23505" }
        #expect(try db.query("SELECT count(*) FROM u").int(0, 0) == 0)
    }

    @Test func serverErrorsCarrySQLStateMessageAndDetail() throws {
        let db = try PGConnection(try TestDatabase.create("errors"))
        try db.query("CREATE TABLE k (n int PRIMARY KEY)")
        try db.query("INSERT INTO k VALUES (1)")
        do {
            try db.query("INSERT INTO k VALUES (\(1))")
            Issue.record("expected a unique violation")
        } catch {
            #expect(error.sqlState == "23505")
            #expect(error.kind == .server)
            #expect(error.detail?.contains("(n)=(1)") == true)
            #expect(!error.isTransient)
        }
        #expect { try db.query("SELEC 1") } throws: { ($0 as? PQError)?.sqlState == "42601" }
        #expect(try db.query("SELECT 1").int(0, 0) == 1)
    }

    @Test func transactionsRollBackOnError() throws {
        let db = try PGConnection(try TestDatabase.create("tx"))
        try db.query("CREATE TABLE x (n int)")
        struct Abort: Error {}
        #expect(throws: Abort.self) {
            try db.transaction {
                try db.query("INSERT INTO x VALUES (1)")
                throw Abort()
            }
        }
        _ = try db.transaction { try db.query("INSERT INTO x VALUES (2)") }
        #expect(try db.query("SELECT array_agg(n)::text FROM x").string(0, 0) == "{2}")
    }

    @Test func connectionFailuresSayWhatToCheck() {
        #expect {
            _ = try PGConnection("host=127.0.0.1 port=1 dbname=nothing connect_timeout=2")
        } throws: { error in
            guard let e = error as? PQError else { return false }
            return e.kind == .connection && e.isTransient && e.hint?.contains("--database") == true
        }
    }
}
