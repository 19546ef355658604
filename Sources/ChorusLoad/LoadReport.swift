import Foundation

/// A run's levels as a table for people, JSON for programs and CSV with perf_analyzer's column names
/// where they apply. Latencies are in milliseconds in the table and JSON, microseconds in the CSV (as
/// perf_analyzer writes them).
public struct LoadReport: Sendable {
    public var target: String
    public var method: String
    public var levels: [LevelResult]
    /// The generator's machine ("AMD EPYC ... 2 cores"): numbers mean little without it.
    public var machine: String
    public var objectives: ServiceLevelObjectives?

    public init(target: String, method: String, levels: [LevelResult], machine: String = LoadReport.thisMachine(),
                objectives: ServiceLevelObjectives? = nil) {
        self.target = target
        self.method = method
        self.levels = levels
        self.machine = machine
        self.objectives = objectives
    }

    /// The processor's model name and the cores this process may use.
    public static func thisMachine() -> String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }

    static func ms(_ micros: UInt64) -> Double { Double(micros) / 1000 }
    static func ms(_ micros: Double) -> Double { micros / 1000 }

    /// Percentiles of a histogram; `scale` turns its units into the reported ones.
    static func summary(_ h: LatencyHistogram, scale: Double = 1e-3) -> [String: Any] {
        guard h.count > 0 else { return ["count": 0] }
        return ["count": h.count, "mean": h.mean * scale, "std": h.standardDeviation * scale, "min": Double(h.min) * scale,
                "p50": Double(h.percentile(50)) * scale, "p90": Double(h.percentile(90)) * scale, "p95": Double(h.percentile(95)) * scale,
                "p99": Double(h.percentile(99)) * scale, "max": Double(h.max) * scale]
    }

    static func figures(_ f: ServerFigures) -> [String: Any] {
        var row: [String: Any] = ["in_flight": f.inFlight, "queue_depth": f.queueDepth, "resident_mib": Double(f.residentBytes) / 1_048_576,
                                  "peak_resident_mib": Double(f.peakResidentBytes) / 1_048_576, "calls_total": f.callsTotal, "calls_failed": f.callsFailed]
        if !f.backends.isEmpty { row["backends"] = f.backends.mapValues { figures($0) } }
        return row
    }

    public var json: [String: Any] {
        var top: [String: Any] = ["target": target, "method": method, "machine": machine, "levels": levels.map(Self.row)]
        if let objectives { top["slo"] = objectives.description }
        return top
    }

    static func row(_ level: LevelResult) -> [String: Any] {
        var row: [String: Any] = [
            "mode": "\(level.mode)", "sent": level.sent, "succeeded": level.succeeded, "failures": level.failures,
            "not_sent": level.notSent, "elapsed_s": level.seconds, "requests_per_s": level.throughput,
            "answers": level.answers, "latency_ms": summary(level.latency),
            "client_cpu_s": level.clientCPUSeconds, "client_cores": level.clientCores,
            "windows": level.windows.map { ["seconds": $0.seconds, "completed": $0.completed, "requests_per_s": $0.throughput,
                                             "latency_ms": $0.latencyMicroseconds / 1000] },
        ]
        if let stable = level.stable { row["stable"] = stable }
        switch level.mode {
        case .concurrency(let n): row["concurrency"] = n
        case .rate(let r, let arrivals):
            row["rate"] = r
            row["arrivals"] = "\(arrivals)"
        }
        if level.firstAnswer.count > 0 {
            row["first_answer_ms"] = summary(level.firstAnswer)
            row["answers_per_s"] = level.seconds > 0 ? Double(level.answers) / level.seconds : 0
        }
        if level.tokens > 0 {
            row["output_tokens"] = level.tokens
            row["output_tokens_per_s"] = level.seconds > 0 ? Double(level.tokens) / level.seconds : 0
            row["ttft_ms"] = summary(level.firstAnswer)
            row["tpot_ms"] = summary(level.timePerOutputToken)
            row["itl_ms"] = summary(level.interTokenLatency)
        }
        if let rtf = level.overallRealTimeFactor {
            // Named explicitly: processing time ÷ the audio's duration (below 1 is faster than real time).
            row["real_time_factor"] = ["overall": rtf, "per_call": summary(level.realTimeFactor, scale: 1e-6),
                                       "audio_s": level.audioInSeconds > 0 ? level.audioInSeconds : level.audioOutSeconds,
                                       "of": level.audioInSeconds > 0 ? "processing ÷ input audio" : "processing ÷ audio produced"]
        }
        if level.steps > 0 { row["s_per_step"] = summary(level.timePerStep, scale: 1e-6) }
        if level.firstPreview.count > 0 { row["first_preview_ms"] = summary(level.firstPreview) }
        if level.images > 0 { row["images_per_s"] = level.seconds > 0 ? Double(level.images) / level.seconds : 0 }
        if let goodput = level.goodput {
            row["goodput_per_s"] = goodput
            row["met_slo"] = level.metObjectives ?? 0
        }
        if let before = level.serverBefore { row["server_before"] = figures(before) }
        if let after = level.serverAfter { row["server_after"] = figures(after) }
        return row
    }

    public func jsonData() throws -> Data {
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    public var csv: String {
        var lines = ["Concurrency,Request Rate,Inferences/Second,Client Send,Succeeded,Errors,Avg latency,p50 latency,p90 latency,p95 latency,p99 latency,Max latency,First answer p50,Output tokens/s,TPOT p50,ITL p50,RTF,Goodput"]
        for level in levels {
            let (concurrency, rate): (String, String) = {
                switch level.mode {
                case .concurrency(let n): return ("\(n)", "")
                case .rate(let r, _): return ("", String(format: "%g", r))
                }
            }()
            let h = level.latency
            let tokens = level.tokens > 0
            lines.append([concurrency, rate, String(format: "%.3f", level.throughput), "\(level.sent)", "\(level.succeeded)", "\(level.failed)",
                          String(format: "%.0f", h.mean), "\(h.percentile(50))", "\(h.percentile(90))", "\(h.percentile(95))",
                          "\(h.percentile(99))", "\(h.count > 0 ? h.max : 0)",
                          level.firstAnswer.count > 0 ? "\(level.firstAnswer.percentile(50))" : "",
                          tokens ? String(format: "%.3f", Double(level.tokens) / max(level.seconds, 1e-9)) : "",
                          tokens ? "\(level.timePerOutputToken.percentile(50))" : "",
                          tokens ? "\(level.interTokenLatency.percentile(50))" : "",
                          level.overallRealTimeFactor.map { String(format: "%.4f", $0) } ?? "",
                          level.goodput.map { String(format: "%.3f", $0) } ?? ""].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public var table: String {
        var out = "chorus load: \(method) at \(target) (client: \(machine))\n"
        out += "level              |   sent     ok  errors |     req/s |  p50 ms   p90 ms   p99 ms   max ms | first p50 ms\n"
        for level in levels {
            let h = level.latency
            let errors = level.failures.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            let name = "\(level.mode)".padding(toLength: 18, withPad: " ", startingAt: 0)
            out += name + String(format: " | %6d %6d %7d | %9.2f | %7.1f  %7.1f  %7.1f  %7.1f | %@\n",
                          level.sent, level.succeeded, level.failed, level.throughput,
                          Self.ms(h.percentile(50)), Self.ms(h.percentile(90)), Self.ms(h.percentile(99)), Self.ms(h.count > 0 ? h.max : 0),
                          (level.firstAnswer.count > 0 ? String(format: "%.1f", Self.ms(level.firstAnswer.percentile(50))) : "-") as NSString)
            for line in Self.details(level) { out += "  " + line + "\n" }
            if !errors.isEmpty { out += "  errors: \(errors)\n" }
            if level.notSent > 0 { out += "  not sent: \(level.notSent) arrivals found the generator's outstanding calls full\n" }
        }
        return out
    }

    /// The modality's own figures and the run's health, a line each.
    static func details(_ level: LevelResult) -> [String] {
        var lines: [String] = []
        if level.tokens > 0 {
            lines.append(String(format: "chat: %d output tokens, %.1f tokens/s; TTFT p50 %.1f ms, p99 %.1f; TPOT p50 %.2f ms, p99 %.2f; ITL p50 %.2f ms, p99 %.2f",
                                level.tokens, Double(level.tokens) / max(level.seconds, 1e-9),
                                ms(level.firstAnswer.percentile(50)), ms(level.firstAnswer.percentile(99)),
                                ms(level.timePerOutputToken.percentile(50)), ms(level.timePerOutputToken.percentile(99)),
                                ms(level.interTokenLatency.percentile(50)), ms(level.interTokenLatency.percentile(99))))
        }
        if let rtf = level.overallRealTimeFactor {
            let input = level.audioInSeconds > 0
            lines.append(String(format: "real-time factor (processing ÷ %@): %.4f overall, p50 %.4f, p99 %.4f over %.1f s of audio",
                                (input ? "input audio" : "audio produced") as NSString, rtf,
                                Double(level.realTimeFactor.percentile(50)) / 1e6, Double(level.realTimeFactor.percentile(99)) / 1e6,
                                input ? level.audioInSeconds : level.audioOutSeconds))
        }
        if level.steps > 0 {
            var line = String(format: "diffusion: %.3f s/step p50, %.2f images/s", Double(level.timePerStep.percentile(50)) / 1e6,
                              Double(level.images) / max(level.seconds, 1e-9))
            if level.firstPreview.count > 0 { line += String(format: ", first preview p50 %.1f ms", ms(level.firstPreview.percentile(50))) }
            lines.append(line)
        }
        if let goodput = level.goodput {
            lines.append(String(format: "goodput: %.2f req/s (%d of %d calls met the objectives)", goodput, level.metObjectives ?? 0, level.sent))
        }
        if let stable = level.stable {
            lines.append("windows: \(level.windows.count), last three \(stable ? "stable" : "NOT stable")")
        }
        if let before = level.serverBefore, let after = level.serverAfter {
            // A gateway's counts are its replicas' sums: a replica that left between the two takes its counts with it.
            func delta(_ a: UInt64, _ b: UInt64) -> String { a >= b ? "\(a - b)" : "n/a (replicas changed)" }
            var line = "server: \(delta(after.callsTotal, before.callsTotal)) calls counted, \(delta(after.callsFailed, before.callsFailed)) failed"
            if after.peakResidentBytes > 0 { line += String(format: ", peak RSS %.0f MiB", Double(after.peakResidentBytes) / 1_048_576) }
            for (name, backend) in after.backends.sorted(by: { $0.key < $1.key }) where backend.peakResidentBytes > 0 {
                line += String(format: "; %@ peak RSS %.0f MiB", name as NSString, Double(backend.peakResidentBytes) / 1_048_576)
            }
            lines.append(line)
        }
        lines.append(String(format: "client: %.2f cores of processor time", level.clientCores))
        return lines
    }
}
