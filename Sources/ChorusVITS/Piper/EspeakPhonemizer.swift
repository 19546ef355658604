import Foundation

/// IPA phonemes from the `espeak-ng` program, run as a separate process (its library is GPL; Chorus
/// does not link it). Piper asks libespeak-ng for IPA one clause at a time and puts each clause's
/// punctuation back ("a space after , : ;"); the command line prints one clause per line, so the
/// punctuation is found in the text and attached to the lines the same way.
package struct EspeakPhonemizer: Sendable {
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    package var executable: String

    package init(executable: String? = nil) {
        self.executable = executable ?? Self.locate() ?? "espeak-ng"
    }

    package static func locate() -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(directory)/espeak-ng"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    package var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: executable) }

    /// The sentences of `text` (split after . ! ? and at blank lines), as Piper synthesises them one by one.
    package static func sentences(_ text: String) -> [String] {
        var sentences: [String] = []
        var current = ""
        let characters = Array(text.replacingOccurrences(of: "\r\n", with: "\n"))
        var i = 0
        while i < characters.count {
            let c = characters[i]
            current.append(c)
            let next = i + 1 < characters.count ? characters[i + 1] : nil
            let endsSentence = ("!?".contains(c) || (c == "." && !Self.isAbbreviationEnd(current)))
                && (next == nil || next!.isWhitespace) && !(next.map { ".!?".contains($0) } ?? false)
            let blankLine = c == "\n" && next == "\n"
            if endsSentence || blankLine {
                let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !trimmed.isEmpty { sentences.append(trimmed) }
                current = ""
            }
            i += 1
        }
        let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !trimmed.isEmpty { sentences.append(trimmed) }
        return sentences
    }

    /// "Dr." and "Mr." do not end a sentence for the chunking (espeak still pauses there).
    private static func isAbbreviationEnd(_ text: String) -> Bool {
        let word = text.split(whereSeparator: { $0.isWhitespace }).last.map(String.init) ?? ""
        return ["Dr.", "Mr.", "Mrs.", "Ms.", "St.", "Prof.", "vs.", "e.g.", "i.e.", "etc."].contains(word)
    }

    /// The clause punctuation of `sentence` in order, one entry per clause ("" for a clause espeak
    /// ends without punctuation, e.g. at a line break).
    package static func clausePunctuation(_ sentence: String) -> [String] {
        var marks: [String] = []
        let characters = Array(sentence)
        var i = 0
        var sawText = false
        while i < characters.count {
            let c = characters[i]
            if ".,;:!?".contains(c) {
                var j = i
                while j + 1 < characters.count && ".,;:!?".contains(characters[j + 1]) { j += 1 }
                if j + 1 == characters.count || characters[j + 1].isWhitespace {
                    if sawText { marks.append(String(characters[j])) }
                    sawText = false
                }
                i = j + 1
                continue
            }
            if c == "\n" && sawText {
                marks.append("")
                sawText = false
            } else if c.isLetter || c.isNumber {
                sawText = true
            }
            i += 1
        }
        if sawText { marks.append("") }
        return marks
    }

    /// IPA of one sentence with its clause punctuation, as Piper's phonemizer gives it.
    package func phonemes(_ sentence: String, voice: String) throws -> String {
        let lines = try run(sentence, voice: voice)
        let marks = Self.clausePunctuation(sentence)
        guard lines.count == marks.count else {
            // espeak split the clauses differently: keep its phonemes, end the sentence with its mark.
            return lines.joined(separator: " ") + (marks.last ?? "")
        }
        var out = ""
        for (line, mark) in zip(lines, marks) {
            if !out.isEmpty && !out.hasSuffix(" ") { out += " " }
            out += line + mark
            if [",", ":", ";"].contains(mark) { out += " " }
        }
        return out.trimmingCharacters(in: .whitespaces)
    }

    /// espeak-ng -q --ipa -v VOICE, the text on stdin; one line per clause.
    private func run(_ text: String, voice: String) throws -> [String] {
        guard isAvailable else {
            throw Failure(description: "espeak-ng is not installed (apt-get install espeak-ng, or scripts/install-deps)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-q", "--ipa", "-v", voice, "--stdin"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Control characters mean nothing to espeak; NUL would end its input early.
        let clean = String(text.unicodeScalars.map { $0.properties.generalCategory == .control && $0 != "\n" ? " " : Character($0) })
        input.fileHandleForWriting.write(Data(clean.utf8))
        try? input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let problems = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "espeak-ng -v \(voice) failed (\(process.terminationStatus)): \(String(decoding: problems, as: UTF8.self).prefix(200))")
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
