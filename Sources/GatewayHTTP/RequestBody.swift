import ChorusInput
import Foundation
import Hummingbird
import NIOCore

/// Reading request bodies: size-limited, JSON objects with OpenAI's loose typing, data URLs.
extension Request {
    /// The whole body, refused with 413 past `limit` bytes before it is all read.
    func bytes(limit: Int) async throws -> [UInt8] {
        do {
            var buffer = try await body.collect(upTo: limit)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw OpenAIError.bodyTooLarge(limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw OpenAIError.bodyTooLarge(limit)
        }
    }

    /// The body as a JSON object if it is one, for a middleware: collected, so that the route still reads it.
    mutating func peekJSON(limit: Int) async throws -> [String: Any]? {
        let buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw OpenAIError.bodyTooLarge(limit)
        }
        return (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any]
    }

    /// The body as a JSON object.
    func jsonObject(limit: Int) async throws -> [String: Any] {
        let data = Data(try await bytes(limit: limit))
        guard let json = try? JSONSerialization.jsonObject(with: data), let object = json as? [String: Any] else {
            throw OpenAIError.invalid("the body is not a JSON object")
        }
        return object
    }
}

/// Typed reads of a JSON object's fields, each failing with a 400 naming the field.
package struct JSONFields {
    let object: [String: Any]

    package init(_ object: [String: Any]) { self.object = object }

    package func string(_ key: String) throws -> String? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let string = value as? String else { throw OpenAIError.invalid("'\(key)' must be a string", param: key) }
        return string
    }

    func requiredString(_ key: String) throws -> String {
        guard let value = try string(key) else { throw OpenAIError.invalid("'\(key)' is required", param: key) }
        return value
    }

    package func number(_ key: String) throws -> Double? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        // JSON's true and false are NSNumbers too (and `1 is Bool` holds on Linux): tell them apart by type.
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else {
            throw OpenAIError.invalid("'\(key)' must be a number", param: key)
        }
        return number.doubleValue
    }

    /// A whole number of `T` within `range` (ChorusInput's checks: NaN, fractions, out of range refused).
    func integer<T: FixedWidthInteger>(_ key: String, in range: ClosedRange<T>) throws -> T? {
        guard let value = try number(key) else { return nil }
        return try OpenAIError.checking { try Checked.integer(value, key, in: range) }
    }

    /// A finite number within `range`, as a Float.
    func float(_ key: String, in range: ClosedRange<Float>) throws -> Float? {
        guard let value = try number(key) else { return nil }
        return try OpenAIError.checking { try Checked.float(value, key, in: range) }
    }

    /// A string or an array of strings, as an array.
    package func strings(_ key: String) throws -> [String]? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        if let one = value as? String { return [one] }
        guard let many = value as? [Any], let strings = many as? [String], strings.count == many.count else {
            throw OpenAIError.invalid("'\(key)' must be a string or an array of strings", param: key)
        }
        return strings
    }

    /// A nested object's fields.
    package func object(_ key: String) throws -> JSONFields? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let nested = value as? [String: Any] else { throw OpenAIError.invalid("'\(key)' must be an object", param: key) }
        return JSONFields(nested)
    }

    /// An object or an array of objects, as an array of their fields.
    package func objects(_ key: String) throws -> [JSONFields]? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        if let one = value as? [String: Any] { return [JSONFields(one)] }
        guard let many = value as? [Any], let objects = many as? [[String: Any]], objects.count == many.count else {
            throw OpenAIError.invalid("'\(key)' must be an object or an array of objects", param: key)
        }
        return objects.map(JSONFields.init)
    }

    package func bool(_ key: String) throws -> Bool? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let bool = value as? Bool else { throw OpenAIError.invalid("'\(key)' must be true or false", param: key) }
        return bool
    }
}

/// `data:image/png;base64,...` → the bytes. Remote URLs are refused: the gateway fetches nothing.
func dataURLBytes(_ url: String, field: String) throws -> [UInt8] {
    guard url.hasPrefix("data:") else {
        throw OpenAIError.invalid("\(field) must be a data URL (data:image/png;base64,...); the gateway does not fetch remote URLs", param: field)
    }
    guard let comma = url.firstIndex(of: ","), url[..<comma].hasSuffix(";base64") else {
        throw OpenAIError.invalid("\(field) is not a base64 data URL", param: field)
    }
    guard let data = Data(base64Encoded: String(url[url.index(after: comma)...]), options: .ignoreUnknownCharacters), !data.isEmpty else {
        throw OpenAIError.invalid("\(field) holds no valid base64 data", param: field)
    }
    return [UInt8](data)
}
