import Foundation

/// How `chorus call` shows a method's answers to a person at a terminal: a progress bar with steps and an ETA for
/// diffusion, transcript segments as they are decoded, chat tokens as they stream, a line per synthesized chunk or
/// pipeline step, and other answers as JSON with their media elided. Piped (or with --json) the answers stay JSON
/// lines; this type only turns each decoded answer into text, so tests can feed it events.
struct HumanRendering {
    /// Columns of the progress bar.
    var barWidth = 30
    /// Whether the cursor is after text that did not end its line (a bar being redrawn, tokens streaming).
    private var lineOpen = false
    private var previews = 0

    /// The text to write for one answer (a message of a stream, or the unary answer).
    mutating func render(_ answer: [String: Any]) -> String {
        if let progress = answer["progress"] as? [String: Any] { return bar(progress) }
        if answer["preview"] is [String: Any] {
            previews += 1
            return ""  // counted, shown on the bar's next redraw
        }
        if let segment = answer["segment"] as? [String: Any] { return closeLine() + Self.segmentLine(segment) }
        if let caption = answer["caption"] as? [String: Any] { return closeLine() + Self.captionLine(caption) }
        if let video = answer["video"] as? [String: Any] {
            let frames = (video["frames"] as? [Any])?.count ?? 0
            return closeLine() + "video: \(frames) frames read, mode \(answer["mode"] as? String ?? "?")\n"
        }
        if answer["step_id"] != nil { return closeLine() + Self.stepLine(answer) }
        if answer["token_id"] != nil || answer["finish_reason"] != nil { return tokens(answer) }
        if answer["sequence"] != nil, let data = answer["data"] as? String {
            let text = (answer["text"] as? String).map { " \"\($0)\"" } ?? ""
            return closeLine() + "audio chunk \(Self.number(answer["sequence"])):\(text) (\(Self.size(ofBase64: data)), "
                + "\(Self.number(answer["sample_rate"])) Hz; --save data=FILE writes it)\n"
        }
        if let result = answer["result"] as? [String: Any] {
            if result["segments"] != nil { return closeLine() + Self.transcriptSummary(result) }
            if let images = result["images"] as? [Any] {
                return closeLine() + "\(images.count) image\(images.count == 1 ? "" : "s"), seed \(Self.number(result["seed"])), "
                    + "\(Self.seconds(result["elapsed_seconds"])) (--save result.images.0.data=FILE writes the first)\n"
            }
        }
        return closeLine() + Self.elidedJSON(answer) + "\n"
    }

    /// What ends the output once the stream has ended: the open line's newline.
    mutating func finish() -> String { closeLine() }

    private mutating func closeLine() -> String {
        defer { lineOpen = false }
        return lineOpen ? "\n" : ""
    }

    /// `[#########---------]  3/10 steps  30%  1.2 s, ETA 2.8 s`, redrawn in place; ends its line at the last step.
    private mutating func bar(_ progress: [String: Any]) -> String {
        let step = Int(Self.number(progress["step"])) ?? 0, total = max(Int(Self.number(progress["total"])) ?? 1, 1)
        let elapsed = (progress["elapsed_seconds"] as? Double) ?? 0
        let done = min(max(step, 0), total)
        let filled = barWidth * done / total
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let previewNote = previews > 0 ? ", \(previews) preview\(previews == 1 ? "" : "s")" : ""
        let line = "[\(String(repeating: "#", count: filled))\(String(repeating: "-", count: barWidth - filled))] "
            + "\(done)/\(total) steps \(String(format: "%3d%%", 100 * done / total))  \(String(format: "%.1f", elapsed)) s"
            + (done < total ? ", ETA \(String(format: "%.1f", eta)) s" : "") + previewNote
        lineOpen = done < total
        return "\r\u{1B}[2K" + line + (done < total ? "" : "\n")
    }

    /// A chat's tokens as they come; the last event ends the line with why it stopped and the token counts.
    private mutating func tokens(_ event: [String: Any]) -> String {
        var out = ""
        if let text = event["text"] as? String, !text.isEmpty {
            out += text
            lineOpen = true
        }
        if let reason = event["finish_reason"] as? String, !reason.isEmpty {
            let usage = event["usage"] as? [String: Any] ?? [:]
            out += closeLine() + "(\(reason); \(Self.number(usage["prompt_tokens"])) prompt tokens, "
                + "\(Self.number(usage["completion_tokens"])) generated)\n"
        }
        return out
    }

    static func segmentLine(_ segment: [String: Any]) -> String {
        "[\(timestamp(segment["start"])) --> \(timestamp(segment["end"]))] \((segment["text"] as? String ?? "").trimmingCharacters(in: .whitespaces))\n"
    }

    static func captionLine(_ caption: [String: Any]) -> String {
        "[\(timestamp(caption["time"] ?? caption["seconds"]))] \(caption["text"] as? String ?? "")\n"
    }

    static func transcriptSummary(_ result: [String: Any]) -> String {
        let probability = (result["language_probability"] as? Double).map { String(format: " (%.2f)", $0) } ?? ""
        return "language \(result["language"] as? String ?? "?")\(probability), \(seconds(result["duration_seconds"])) of audio, "
            + "model \(result["model"] as? String ?? "?")\n"
    }

    static func stepLine(_ event: [String: Any]) -> String {
        let code = Int(number(event["status_code"])) ?? 0
        let state = code == 0 ? ((event["done"] as? Bool) == true ? "done" : "running") : "failed: \(event["status_message"] as? String ?? "status \(code)")"
        let time = (event["finished_ms"] as? Double).map { String(format: " at %.0f ms", $0) } ?? ""
        var line = "step \(event["step_id"] as? String ?? "?"): \(state)\(time)"
        if let output = event["output_json"] as? String, !output.isEmpty,
           let parsed = try? JSONSerialization.jsonObject(with: Data(output.utf8)) {
            line += "  " + elidedJSON(parsed, pretty: false)
        }
        return line + "\n"
    }

    /// JSON for a person: base64 strings longer than a line (images, audio) become their size.
    static func elidedJSON(_ value: Any, pretty: Bool = true) -> String {
        func elide(_ value: Any) -> Any {
            switch value {
            case let object as [String: Any]: return object.mapValues(elide)
            case let list as [Any]: return list.map(elide)
            case let text as String where text.count > 120 && Data(base64Encoded: text) != nil:
                return "<\(size(ofBase64: text))>"
            default: return value
            }
        }
        let options: JSONSerialization.WritingOptions = pretty ? [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]
            : [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]
        guard let data = try? JSONSerialization.data(withJSONObject: elide(value), options: options) else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }

    static func size(ofBase64 text: String) -> String {
        let bytes = text.utf8.count / 4 * 3
        return bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / 1_048_576)
            : bytes >= 1 << 10 ? String(format: "%.1f KiB", Double(bytes) / 1024) : "\(bytes) bytes"
    }

    /// 83.5 → "01:23.500".
    static func timestamp(_ value: Any?) -> String {
        let seconds = max((value as? Double) ?? Double(number(value)) ?? 0, 0)
        guard seconds.isFinite, seconds < 1e7 else { return "??:??" }
        let milliseconds = Int((seconds * 1000).rounded())
        return String(format: "%02d:%02d.%03d", milliseconds / 60_000, milliseconds / 1000 % 60, milliseconds % 1000)
    }

    static func seconds(_ value: Any?) -> String {
        String(format: "%.2f s", (value as? Double) ?? 0)
    }

    /// A JSON number (or a 64-bit integer JSON carries as a string) as text.
    static func number(_ value: Any?) -> String {
        switch value {
        case let number as NSNumber: return number.stringValue
        case let text as String: return text
        default: return "0"
        }
    }
}
