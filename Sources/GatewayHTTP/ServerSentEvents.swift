import Foundation
import NIOCore

/// Server-sent events as OpenAI's streams send them: `data: <one JSON object>` and a blank line per
/// event, `data: [DONE]` at the end. One writer for chat, images and pipelines.
package enum ServerSentEvents {
    /// The event for `object`. Foundation's JSONSerialization ends the process on a value it cannot
    /// write (a top level that is not an object or array, NaN), so the object is checked first and
    /// an unwritable one becomes an error event.
    package static func event(_ object: Any) -> ByteBuffer {
        var data = Data(#"{"error":{"message":"an event could not be written as JSON","type":"server_error"}}"#.utf8)
        if JSONSerialization.isValidJSONObject(object), let json = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            data = json
        }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(data.count + 8)
        buffer.writeString("data: ")
        buffer.writeBytes(data)
        buffer.writeString("\n\n")
        return buffer
    }

    package static let done = ByteBuffer(string: "data: [DONE]\n\n")
}
