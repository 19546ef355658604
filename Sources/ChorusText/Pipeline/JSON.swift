import Foundation

/// A read-only view of parsed JSON that answers `nil` for anything absent or of another type,
/// so that readers can apply the defaults tokenizers' serde applies to missing fields.
struct JSON {
    let raw: Any?

    init(_ raw: Any?) {
        self.raw = raw is NSNull ? nil : raw
    }

    static func load(_ url: URL) throws -> JSON {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.missingFile(path: url.path, needed: "it could not be read (\(error.localizedDescription))")
        }
        do {
            return JSON(try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
        } catch {
            throw TokenizerError.invalidFile(path: url.path, reason: "not valid JSON (\(error.localizedDescription))")
        }
    }

    subscript(key: String) -> JSON {
        JSON((raw as? [String: Any])?[key])
    }

    var isNull: Bool { raw == nil }
    var string: String? { raw as? String }
    var array: [JSON]? { (raw as? [Any])?.map(JSON.init) }
    var object: [String: Any]? { raw as? [String: Any] }

    var int: Int? {
        if let number = raw as? NSNumber { return number.intValue }
        return raw as? Int
    }

    var bool: Bool? {
        if let flag = raw as? Bool { return flag }
        return (raw as? NSNumber)?.boolValue
    }
}
