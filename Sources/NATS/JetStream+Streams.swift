import CNATS
import Foundation

extension JetStream {
    /// Creates the stream, or updates it when its configuration differs from `config`. Transient
    /// failures (a leader election) are retried for up to 30 s.
    @discardableResult
    public func ensureStream(_ config: StreamConfig) async throws -> StreamReconciliation {
        try await retryingTransientFailures { try await connection.executor.run { [connection] in
            let existing: StreamInfo?
            do {
                existing = try Self.streamInfo(connection, name: config.name)
            } catch let error as NATSError where error.kind == .streamNotFound || error.kind == .notFound {
                existing = nil
            }
            if let existing, existing.config.matches(config) { return .unchanged }
            if let existing, existing.config.storage != config.storage {
                throw NATSError(kind: .invalidArgument, operation: "update stream \(config.name)",
                                message: "its storage type cannot change in place; migrate the stream by hand")
            }
            let strings = CStrings()
            var subjects: [UnsafePointer<CChar>?] = config.subjects.map { strings.copy($0) }
            var cConfig = jsStreamConfig()
            jsStreamConfig_Init(&cConfig)
            cConfig.Name = strings.copy(config.name)
            cConfig.SubjectsLen = Int32(subjects.count)
            cConfig.Storage = config.storage == .file ? js_FileStorage : js_MemoryStorage
            cConfig.Duplicates = config.duplicateWindow.nanoseconds
            cConfig.MaxAge = config.maxAge?.nanoseconds ?? 0
            cConfig.MaxBytes = config.maxBytes
            cConfig.MaxMsgs = config.maxMessages
            cConfig.Replicas = Int64(config.replicas)
            var code = jsErrCode(rawValue: 0)
            var info: UnsafeMutablePointer<jsStreamInfo>?
            let status = subjects.withUnsafeMutableBufferPointer { buffer in
                cConfig.Subjects = buffer.baseAddress
                return existing == nil
                    ? js_AddStream(&info, connection.jetStreamContext, &cConfig, nil, &code)
                    : js_UpdateStream(&info, connection.jetStreamContext, &cConfig, nil, &code)
            }
            jsStreamInfo_Destroy(info)
            let verb = existing == nil ? "create" : "update"
            try NATSError.check(status, "\(verb) stream \(config.name)", jetStreamCode: code)
            return existing == nil ? .created : .updated
        } }
    }

    public func streamInfo(_ name: String) async throws -> StreamInfo {
        try await connection.executor.run { [connection] in try Self.streamInfo(connection, name: name) }
    }

    public func deleteStream(_ name: String) async throws {
        try await connection.executor.run { [connection] in
            var code = jsErrCode(rawValue: 0)
            try NATSError.check(js_DeleteStream(connection.jetStreamContext, name, nil, &code), "delete stream \(name)", jetStreamCode: code)
        }
    }

    /// The last message stored on `subject` in `stream`, or nil when the subject has none.
    public func lastMessage(stream: String, subject: String) async throws -> StoredMessage? {
        try await connection.executor.run { [connection] in
            var message: OpaquePointer?
            var code = jsErrCode(rawValue: 0)
            let status = js_GetLastMsg(&message, connection.jetStreamContext, stream, subject, nil, &code)
            if status == NATS_NOT_FOUND { return nil }
            try NATSError.check(status, "get last message of \(subject)", jetStreamCode: code)
            guard let message else { return nil }
            defer { natsMsg_Destroy(message) }
            return StoredMessage(message)
        }
    }

    static func streamInfo(_ connection: NATSConnection, name: String) throws -> StreamInfo {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = js_GetStreamInfo(&info, connection.jetStreamContext, name, nil, &code)
        defer { jsStreamInfo_Destroy(info) }
        try NATSError.check(status, "get stream \(name)", jetStreamCode: code)
        guard let info, let cConfig = info.pointee.Config else {
            throw NATSError(kind: .other, operation: "get stream \(name)", message: "no configuration in the answer")
        }
        let c = cConfig.pointee
        let subjects = (0..<Int(c.SubjectsLen)).compactMap { String(optionalCString: c.Subjects[$0]) }
        let config = StreamConfig(
            name: String(optionalCString: c.Name) ?? name, subjects: subjects,
            storage: c.Storage == js_MemoryStorage ? .memory : .file,
            duplicateWindow: Duration(nanoseconds: c.Duplicates),
            maxAge: c.MaxAge == 0 ? nil : Duration(nanoseconds: c.MaxAge),
            maxBytes: c.MaxBytes, maxMessages: c.MaxMsgs, replicas: Int(c.Replicas))
        let state = info.pointee.State
        return StreamInfo(config: config, messages: state.Msgs, bytes: state.Bytes, firstSequence: state.FirstSeq,
                          lastSequence: state.LastSeq, consumers: Int(state.Consumers))
    }
}

/// A message as stored in a stream (from a direct get or a replay), with no acknowledgement.
public struct StoredMessage: Sendable {
    public let subject: String
    public let payload: Data
    public let headers: NATSHeaders
    public let sequence: UInt64
    public let timestamp: Date

    init(_ message: OpaquePointer) {
        subject = String(optionalCString: natsMsg_GetSubject(message)) ?? ""
        payload = payloadData(of: message)
        headers = NATSHeaders.read(from: message)
        sequence = natsMsg_GetSequence(message)
        timestamp = Date(timeIntervalSince1970: Double(natsMsg_GetTime(message)) / 1e9)
    }

    init(subject: String, payload: Data, headers: NATSHeaders, sequence: UInt64, timestamp: Date) {
        self.subject = subject
        self.payload = payload
        self.headers = headers
        self.sequence = sequence
        self.timestamp = timestamp
    }
}

/// A copy of a libnats message's payload.
func payloadData(of message: OpaquePointer) -> Data {
    let length = Int(natsMsg_GetDataLength(message))
    guard length > 0, let bytes = natsMsg_GetData(message) else { return Data() }
    return Data(bytes: bytes, count: length)
}

extension JetStream {
    /// The message stored at `sequence` in `stream`, or nil when there is none (deleted or never).
    public func message(stream: String, sequence: UInt64) async throws -> StoredMessage? {
        try await connection.executor.run { [connection] in
            var message: OpaquePointer?
            var code = jsErrCode(rawValue: 0)
            let status = js_GetMsg(&message, connection.jetStreamContext, stream, sequence, nil, &code)
            if status == NATS_NOT_FOUND { return nil }
            try NATSError.check(status, "get message \(sequence) of \(stream)", jetStreamCode: code)
            guard let message else { return nil }
            defer { natsMsg_Destroy(message) }
            return StoredMessage(message)
        }
    }
}

extension JetStream {
    /// The first message on `subject` (wildcards allowed) at or after `sequence` in `stream`, or
    /// nil when there is none. One round trip (`STREAM.MSG.GET` with `next_by_subj`).
    public func nextMessage(stream: String, subject: String, from sequence: UInt64) async throws -> StoredMessage? {
        struct Request: Encodable {
            let seq: UInt64
            let next_by_subj: String
        }
        struct Response: Decodable {
            struct Message: Decodable {
                let subject: String
                let seq: UInt64
                let hdrs: String?
                let data: String?
                let time: String?
            }
            let message: Message?
            let error: JetStreamAPIError?
        }
        let body = try JSONEncoder().encode(Request(seq: max(1, sequence), next_by_subj: subject))
        let data = try await connection.request("$JS.API.STREAM.MSG.GET.\(stream)", body, timeout: connection.options.apiTimeout)
        let response = try JSONDecoder().decode(Response.self, from: data)
        if let error = response.error {
            if error.code == 404 { return nil }
            throw NATSError(kind: error.err_code == 10059 ? .streamNotFound : .other, operation: "get next message of \(subject)",
                            message: error.description ?? "error \(error.code)", jetStreamCode: error.err_code ?? 0)
        }
        guard let message = response.message else { return nil }
        let payload = message.data.flatMap { Data(base64Encoded: $0) } ?? Data()
        var headers = NATSHeaders()
        if let raw = message.hdrs.flatMap({ Data(base64Encoded: $0) }) {
            // NATS/1.0\r\nName: value\r\n…\r\n\r\n
            for line in String(decoding: raw, as: UTF8.self).components(separatedBy: "\r\n").dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers.add(String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
        }
        let timestamp = message.time.flatMap { try? Date($0, strategy: .iso8601) } ?? Date(timeIntervalSince1970: 0)
        return StoredMessage(subject: message.subject, payload: payload, headers: headers, sequence: message.seq, timestamp: timestamp)
    }
}

extension JetStream {
    /// Deletes the message at `sequence` from `stream`; false when there is none.
    @discardableResult
    public func deleteMessage(stream: String, sequence: UInt64) async throws -> Bool {
        struct Request: Encodable { let seq: UInt64 }
        struct Response: Decodable {
            let success: Bool?
            let error: JetStreamAPIError?
        }
        let answer = try await connection.request("$JS.API.STREAM.MSG.DELETE.\(stream)", try JSONEncoder().encode(Request(seq: sequence)),
                                                  timeout: connection.options.apiTimeout)
        let response = try JSONDecoder().decode(Response.self, from: answer)
        guard let error = response.error else { return response.success ?? true }
        // No message at that sequence (never there, or already gone): "sequence not found"
        // (10043), "no message found" (10037), or that text in the generic delete error (10057).
        let text = (error.description ?? "").lowercased()
        if error.err_code == 10043 || error.err_code == 10037 || text.contains("not found") || text.contains("no message found") {
            return false
        }
        throw NATSError(kind: .other, operation: "delete message \(sequence) of \(stream)",
                        message: error.description ?? "error \(error.code)", jetStreamCode: error.err_code ?? 0)
    }
}

/// The `error` object of a JetStream API answer (`$JS.API.…`).
struct JetStreamAPIError: Decodable {
    let code: Int
    let err_code: Int?
    let description: String?
}
