-- Wireshark dissector for mvkvm control frames (EtherType 0x88B5) and authenticated statistics
-- datagrams (0x88B6). Wire format: docs/protocol.md.
-- Use: tshark -X lua_script:dist/wireshark/mvkvm.lua -r capture.pcap -O mvkvm
local p = Proto("mvkvm", "mvkvm control protocol")

local types = { [1] = "DATA", [2] = "ACK", [3] = "HELLO", [4] = "KEEPALIVE", [5] = "DGRAM" }
local tlv_names = { [1] = "MAC", [2] = "Roles", [3] = "Hostname", [4] = "Version",
                    [5] = "Blade", [6] = "Chassis", [7] = "Rack", [8] = "Interval (ms)" }

local f = p.fields
f.version  = ProtoField.uint8("mvkvm.version", "Version")
f.type     = ProtoField.uint8("mvkvm.type", "Type", base.DEC, types)
f.flags    = ProtoField.uint16("mvkvm.flags", "Flags", base.HEX)
f.f_req    = ProtoField.bool("mvkvm.flags.request", "Request", 16, nil, 0x0001)
f.f_resp   = ProtoField.bool("mvkvm.flags.response", "Response", 16, nil, 0x0002)
f.f_retx   = ProtoField.bool("mvkvm.flags.retx", "Retransmission", 16, nil, 0x0004)
f.f_ackreq = ProtoField.bool("mvkvm.flags.ackreq", "Ack requested", 16, nil, 0x0008)
f.f_stale  = ProtoField.bool("mvkvm.flags.stale", "Stale destination", 16, nil, 0x0010)
f.key_id   = ProtoField.uint8("mvkvm.key_id", "Key id")
f.reserved = ProtoField.uint8("mvkvm.reserved", "Reserved")
f.plen     = ProtoField.uint16("mvkvm.payload_len", "Payload length")
f.src_node = ProtoField.uint64("mvkvm.src_node", "Source node")
f.src_inc  = ProtoField.uint64("mvkvm.src_incarnation", "Source incarnation")
f.dst_inc  = ProtoField.uint64("mvkvm.dst_incarnation", "Destination incarnation")
f.counter  = ProtoField.uint64("mvkvm.counter", "Counter")
f.seq      = ProtoField.uint32("mvkvm.seq", "Sequence")
f.ack      = ProtoField.uint32("mvkvm.ack", "Ack")
f.window   = ProtoField.uint16("mvkvm.window", "Window")
f.op       = ProtoField.uint16("mvkvm.op", "Op")
f.msg_id   = ProtoField.uint32("mvkvm.msg_id", "Message id")
f.ref      = ProtoField.uint32("mvkvm.ref", "Answers request")
f.msg_len  = ProtoField.uint32("mvkvm.msg_len", "Message length")
f.frag_off = ProtoField.uint32("mvkvm.frag_off", "Fragment offset")
f.status   = ProtoField.int32("mvkvm.status", "Status")
f.payload  = ProtoField.bytes("mvkvm.payload", "Payload")
f.sack_start = ProtoField.uint32("mvkvm.sack.start", "SACK start")
f.sack_end   = ProtoField.uint32("mvkvm.sack.end", "SACK end")
f.tlv_type = ProtoField.uint8("mvkvm.hello.type", "TLV type", base.DEC, tlv_names)
f.tlv_len  = ProtoField.uint8("mvkvm.hello.len", "TLV length")
f.hello_mac  = ProtoField.ether("mvkvm.hello.mac", "MAC")
f.hello_roles = ProtoField.uint32("mvkvm.hello.roles", "Roles", base.HEX)
f.hello_str  = ProtoField.string("mvkvm.hello.text", "Text")
f.hello_host = ProtoField.string("mvkvm.hello.hostname", "Hostname")
f.hello_u32  = ProtoField.uint32("mvkvm.hello.value", "Value")
f.tag      = ProtoField.bytes("mvkvm.tag", "MAC tag")

local e_len = ProtoExpert.new("mvkvm.bad_length", "Length does not match header + payload + tag",
                              expert.group.MALFORMED, expert.severity.ERROR)
local e_ver = ProtoExpert.new("mvkvm.bad_version", "Unknown protocol version",
                              expert.group.MALFORMED, expert.severity.ERROR)
local e_tlv = ProtoExpert.new("mvkvm.bad_tlv", "Truncated HELLO TLV",
                              expert.group.MALFORMED, expert.severity.ERROR)
p.experts = { e_len, e_ver, e_tlv }

local HDR, TAG = 72, 16

local function dissect_hello(buf, tree)
    local off, len = 0, buf:len()
    while off < len do
        if len - off < 2 or buf(off + 1, 1):uint() > len - off - 2 then
            tree:add_proto_expert_info(e_tlv)
            return
        end
        local t, n = buf(off, 1):uint(), buf(off + 1, 1):uint()
        local st = tree:add(p, buf(off, 2 + n), "TLV " .. (tlv_names[t] or tostring(t)))
        st:add(f.tlv_type, buf(off, 1))
        st:add(f.tlv_len, buf(off + 1, 1))
        local v = buf(off + 2, n)
        if t == 1 and n == 6 then st:add(f.hello_mac, v)
        elseif t == 2 and n == 4 then st:add(f.hello_roles, v)
        elseif t == 3 and n > 0 then st:add(f.hello_host, v)
        elseif t == 8 and n == 4 then st:add(f.hello_u32, v)
        elseif n > 0 then st:add(f.hello_str, v) end
        off = off + 2 + n
    end
end

function p.dissector(buf, pinfo, tree)
    local len = buf:len()
    if len < 1 then return 0 end
    pinfo.cols.protocol = "MVKVM"
    local t = tree:add(p, buf(), "mvkvm control protocol")
    t:add(f.version, buf(0, 1))
    if buf(0, 1):uint() ~= 1 then
        t:add_proto_expert_info(e_ver)
        return len
    end
    if len < HDR + TAG then
        t:add_proto_expert_info(e_len)
        return len
    end
    local typ = buf(1, 1):uint()
    t:add(f.type, buf(1, 1))
    local fl = t:add(f.flags, buf(2, 2))
    fl:add(f.f_req, buf(2, 2)); fl:add(f.f_resp, buf(2, 2)); fl:add(f.f_retx, buf(2, 2))
    fl:add(f.f_ackreq, buf(2, 2)); fl:add(f.f_stale, buf(2, 2))
    t:add(f.key_id, buf(4, 1))
    t:add(f.reserved, buf(5, 1))
    t:add(f.plen, buf(6, 2))
    local plen = buf(6, 2):uint()
    t:add(f.src_node, buf(8, 8))
    t:add(f.src_inc, buf(16, 8))
    t:add(f.dst_inc, buf(24, 8))
    t:add(f.counter, buf(32, 8))
    t:add(f.seq, buf(40, 4))
    t:add(f.ack, buf(44, 4))
    t:add(f.window, buf(48, 2))
    t:add(f.op, buf(50, 2))
    t:add(f.msg_id, buf(52, 4))
    t:add(f.ref, buf(56, 4))
    t:add(f.msg_len, buf(60, 4))
    t:add(f.frag_off, buf(64, 4))
    t:add(f.status, buf(68, 4))
    if len ~= HDR + plen + TAG then
        t:add_proto_expert_info(e_len)
        return len
    end
    local info = (types[typ] or "?") .. " node=" .. tostring(buf(8, 8):uint64())
    if plen > 0 then
        local pl = buf(HDR, plen)
        local pt = t:add(f.payload, pl)
        if typ == 2 then
            for i = 0, plen - 8, 8 do
                pt:add(f.sack_start, pl(i, 4))
                pt:add(f.sack_end, pl(i + 4, 4))
            end
        elseif typ == 3 then
            dissect_hello(pl, pt)
        end
    end
    t:add(f.tag, buf(HDR + plen, TAG))
    if typ == 1 then
        info = info .. " seq=" .. buf(40, 4):uint() .. " ack=" .. buf(44, 4):uint() ..
               " msg=" .. buf(52, 4):uint() .. " off=" .. buf(64, 4):uint() .. "/" ..
               buf(60, 4):uint()
    elseif typ == 2 or typ == 4 then
        info = info .. " ack=" .. buf(44, 4):uint() .. " win=" .. buf(48, 2):uint()
    end
    pinfo.cols.info = info
    return len
end

local eth = DissectorTable.get("ethertype")
eth:add(0x88B5, p)
eth:add(0x88B6, p)
