/*
 * MskIamValidatorCallbackHandler: the local Kafka's stand-in for Amazon MSK's IAM authentication.
 *
 * What: a server-side OAUTHBEARER callback handler (Kafka's AuthenticateCallbackHandler) for the
 * SASL_SSL listener of the local stack (scripts/stack). It accepts exactly the tokens AWS's MSK IAM
 * signers produce: base64url (no padding) of a SigV4-presigned URL
 *   https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=...
 *     &X-Amz-Credential=<akid>/<yyyymmdd>/<region>/kafka-cluster/aws4_request&X-Amz-Date=...
 *     &X-Amz-Expires=<s>&X-Amz-SignedHeaders=host[&X-Amz-Security-Token=...]&X-Amz-Signature=...
 *     [&User-Agent=...]
 * signed with a secret this broker knows, and refuses everything else, logging why.
 *
 * Why: the worker's MSK IAM token (issue 9) must be tested end to end against a real broker, and
 * MSK itself is out of reach. Kafka ships no SigV4 validator and no library on Maven Central does
 * the server side, so the few checks are written here; the client-side oracle of the tests is
 * AWS's own Python signer, so this class is held to AWS's format, not to the worker's.
 *
 * How: JAAS options of the listener's OAuthBearerLoginModule entry configure it:
 *   credentialsFile   file of "access_key_id secret [session_token=T] [principal=P]" lines
 *                     ('#' comments); re-read when its modification time changes
 *   region            the only region accepted (host and credential scope)
 *   clockSkewSeconds  tolerance of X-Amz-Date in the future and of expiry (default 60)
 * A token is decoded, its URL split into strictly percent-decoded parameters (duplicates
 * refused), the fixed fields checked (host, path, action, algorithm, scope, signed headers,
 * 1 <= X-Amz-Expires <= 900 as the official signers use, date window), the session token
 * compared when the key requires one, and the signature recomputed as botocore's
 * SigV4QueryAuth computes it: canonical request GET, "/", every query parameter but
 * X-Amz-Signature and User-Agent (the signers append User-Agent after signing), AWS-encoded and
 * sorted, header "host", payload hash of the empty body. The principal is the key's configured
 * principal, else its access key id. MSK tokens carry no SASL extensions, so any is refused.
 * A refusal answers the client with status invalid_token (as a real broker gives no reason) and
 * logs "MSK IAM: refused: <reason>" with the access key id, never a secret or a signature; values
 * from a token are logged printable and short, so a token cannot forge log lines.
 */

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;
import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerExtensionsValidatorCallback;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public class MskIamValidatorCallbackHandler implements AuthenticateCallbackHandler {
    private static final Logger LOG = LoggerFactory.getLogger(MskIamValidatorCallbackHandler.class);
    static final String ACTION = "kafka-cluster:Connect";
    static final String SERVICE = "kafka-cluster";
    static final String ALGORITHM = "AWS4-HMAC-SHA256";
    static final int MAX_EXPIRES_SECONDS = 900;
    static final String EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    static final DateTimeFormatter AMZ_DATE = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'");

    private Path credentialsFile;
    private String region;
    private long skewSeconds = 60;
    private long loadedMtime = Long.MIN_VALUE;
    private Map<String, Key> keys = Collections.emptyMap();

    /** One known access key: its secret, the session token it requires (or null), its principal. */
    record Key(String secret, String sessionToken, String principal) {}

    /** A reason to refuse a token; its message goes to the broker log only. */
    static final class Refusal extends Exception {
        private static final long serialVersionUID = 1L;
        Refusal(String reason) { super(reason, null, false, false); }
    }

    /** The token Kafka keeps for an authenticated session. */
    record Token(String value, String principalName, long startMs, long lifetimeMs) implements OAuthBearerToken {
        public Set<String> scope() { return Collections.emptySet(); }
        public long lifetimeMs() { return lifetimeMs; }
        public Long startTimeMs() { return startMs; }
    }

    // ---- configuration ---------------------------------------------------------------------

    @Override
    public void configure(Map<String, ?> configs, String mechanism, List<AppConfigurationEntry> jaas) {
        if (!"OAUTHBEARER".equals(mechanism) || jaas.size() != 1)
            throw new IllegalArgumentException("MSK IAM: expected one OAUTHBEARER JAAS entry, got " + mechanism);
        Map<String, ?> options = jaas.get(0).getOptions();
        credentialsFile = Paths.get(requiredOption(options, "credentialsFile"));
        region = requiredOption(options, "region");
        Object skew = options.get("clockSkewSeconds");
        if (skew != null) skewSeconds = Long.parseLong(skew.toString());
        try {
            keys();
        } catch (Refusal e) {
            throw new IllegalArgumentException("MSK IAM: " + e.getMessage());
        }
        LOG.info("MSK IAM: validating tokens for region {} with the keys of {}", region, credentialsFile);
    }

    private static String requiredOption(Map<String, ?> options, String name) {
        Object v = options.get(name);
        if (v == null || v.toString().isEmpty())
            throw new IllegalArgumentException("MSK IAM: JAAS option " + name + " is required");
        return v.toString();
    }

    /** The known keys, re-read when the file changed. */
    private synchronized Map<String, Key> keys() throws Refusal {
        try {
            long mtime = Files.getLastModifiedTime(credentialsFile).toMillis();
            if (mtime != loadedMtime) {
                keys = parseCredentials(Files.readAllLines(credentialsFile, StandardCharsets.UTF_8));
                loadedMtime = mtime;
            }
            return keys;
        } catch (IOException e) {
            throw new Refusal("cannot read credentials file " + credentialsFile + ": " + e.getMessage());
        }
    }

    static Map<String, Key> parseCredentials(List<String> lines) throws Refusal {
        Map<String, Key> out = new HashMap<>();
        int n = 0;
        for (String line : lines) {
            n++;
            String t = line.strip();
            if (t.isEmpty() || t.startsWith("#")) continue;
            String[] f = t.split("\\s+");
            if (f.length < 2) throw new Refusal("credentials line " + n + ": expected access key id and secret");
            String token = null, principal = f[0];
            for (int i = 2; i < f.length; i++) {
                if (f[i].startsWith("session_token=")) token = f[i].substring(14);
                else if (f[i].startsWith("principal=")) principal = f[i].substring(10);
                else throw new Refusal("credentials line " + n + ": unknown field " + f[i].split("=")[0]);
            }
            out.put(f[0], new Key(f[1], token, principal));
        }
        return out;
    }

    // ---- callbacks -------------------------------------------------------------------------

    @Override
    public void handle(Callback[] callbacks) throws UnsupportedCallbackException {
        for (Callback cb : callbacks) {
            if (cb instanceof OAuthBearerValidatorCallback v) validate(v);
            else if (cb instanceof OAuthBearerExtensionsValidatorCallback x) refuseExtensions(x);
            else throw new UnsupportedCallbackException(cb);
        }
    }

    private void validate(OAuthBearerValidatorCallback cb) {
        try {
            Token t = verify(cb.tokenValue(), System.currentTimeMillis());
            LOG.info("MSK IAM: authenticated principal {}", t.principalName());
            cb.token(t);
        } catch (Refusal e) {
            LOG.warn("MSK IAM: refused: {}", e.getMessage());
            cb.error("invalid_token", null, null);
        } catch (RuntimeException e) {
            LOG.warn("MSK IAM: refused: malformed token ({})", e.getClass().getSimpleName());
            cb.error("invalid_token", null, null);
        }
    }

    private static void refuseExtensions(OAuthBearerExtensionsValidatorCallback cb) {
        for (String name : cb.inputExtensions().map().keySet()) {
            LOG.warn("MSK IAM: refused: SASL extension {} (MSK IAM tokens carry none)", name);
            cb.error(name, "MSK IAM takes no SASL extensions");
        }
    }

    // ---- verification ----------------------------------------------------------------------

    /** The session token for a valid MSK IAM token at time nowMs; a Refusal says why not. */
    Token verify(String token, long nowMs) throws Refusal {
        String url = decodeToken(token);
        String host = "kafka." + region + ".amazonaws.com";
        String prefix = "https://" + host + "/?";
        if (!url.startsWith(prefix))
            throw new Refusal("token is not a presigned URL for https://" + host + "/");
        Map<String, String> q = parseQuery(url.substring(prefix.length()));
        expect(q, "Action", ACTION);
        expect(q, "X-Amz-Algorithm", ALGORITHM);
        expect(q, "X-Amz-SignedHeaders", "host");
        String[] scope = scope(required(q, "X-Amz-Credential"));
        String akid = scope[0];
        long signedAt = checkTime(q, scope[1], nowMs, akid);
        Key key = keys().get(akid);
        if (key == null) throw new Refusal("unknown access key id " + akid);
        checkSessionToken(q.get("X-Amz-Security-Token"), key, akid);
        checkSignature(q, host, scope[1], key.secret(), akid);
        long expires = Long.parseLong(q.get("X-Amz-Expires"));
        return new Token(token, key.principal(), signedAt * 1000, (signedAt + expires) * 1000);
    }

    static String decodeToken(String token) throws Refusal {
        if (token == null || token.isEmpty() || !token.matches("[A-Za-z0-9_-]+"))
            throw new Refusal("token is not base64url without padding");
        try {
            return new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw new Refusal("token is not base64url without padding");
        }
    }

    /** Query parameters, percent-decoded; a malformed escape or a repeated name is refused. */
    static Map<String, String> parseQuery(String query) throws Refusal {
        Map<String, String> out = new TreeMap<>();
        for (String pair : query.split("&", -1)) {
            int eq = pair.indexOf('=');
            if (eq <= 0) throw new Refusal("malformed query parameter in presigned URL");
            String name = percentDecode(pair.substring(0, eq));
            if (out.put(name, percentDecode(pair.substring(eq + 1))) != null)
                throw new Refusal("query parameter " + shown(name) + " repeated");
        }
        return out;
    }

    static String percentDecode(String s) throws Refusal {
        byte[] out = new byte[s.length()];
        int n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '%') {
                if (i + 2 >= s.length())
                    throw new Refusal("malformed percent escape in presigned URL");
                int hi = Character.digit(s.charAt(i + 1), 16), lo = Character.digit(s.charAt(i + 2), 16);
                if (hi < 0 || lo < 0) throw new Refusal("malformed percent escape in presigned URL");
                out[n++] = (byte) (hi * 16 + lo);
                i += 2;
            } else if (c < 0x21 || c > 0x7e) {
                throw new Refusal("unescaped character in presigned URL");
            } else {
                out[n++] = (byte) c;
            }
        }
        return new String(out, 0, n, StandardCharsets.UTF_8);
    }

    /** A value from a token as the log may show it: printable ASCII, at most 64 characters. */
    static String shown(String v) {
        String t = v.length() > 64 ? v.substring(0, 64) + "..." : v;
        return t.replaceAll("[^\\x20-\\x7e]", "?");
    }

    static String required(Map<String, String> q, String name) throws Refusal {
        String v = q.get(name);
        if (v == null) throw new Refusal("presigned URL has no " + name);
        return v;
    }

    static void expect(Map<String, String> q, String name, String want) throws Refusal {
        String got = required(q, name);
        if (!got.equals(want)) throw new Refusal(name + " is " + shown(got) + ", expected " + want);
    }

    /** {access key id, date} of "akid/date/region/service/aws4_request", all parts checked. */
    private String[] scope(String credential) throws Refusal {
        String[] p = credential.split("/", -1);
        if (p.length != 5 || p[0].isEmpty() || !p[1].matches("\\d{8}"))
            throw new Refusal("X-Amz-Credential is not <access key id>/<date>/<region>/<service>/aws4_request");
        if (!p[0].matches("[A-Za-z0-9]{16,128}"))
            throw new Refusal("access key id " + shown(p[0]) + " is not 16 to 128 letters and digits");
        if (!p[2].equals(region)) throw new Refusal("credential scope region " + shown(p[2]) + ", expected " + region);
        if (!p[3].equals(SERVICE)) throw new Refusal("credential scope service " + shown(p[3]) + ", expected " + SERVICE);
        if (!p[4].equals("aws4_request")) throw new Refusal("credential scope does not end in aws4_request");
        return new String[] {p[0], p[1]};
    }

    /** X-Amz-Date in seconds, checked against the scope date, X-Amz-Expires and the clock. */
    private long checkTime(Map<String, String> q, String scopeDate, long nowMs, String akid) throws Refusal {
        String date = required(q, "X-Amz-Date");
        long signedAt;
        try {
            signedAt = LocalDateTime.parse(date, AMZ_DATE).toEpochSecond(ZoneOffset.UTC);
        } catch (DateTimeParseException e) {
            throw new Refusal("X-Amz-Date " + shown(date) + " is not yyyyMMddTHHmmssZ");
        }
        if (!date.startsWith(scopeDate)) throw new Refusal("X-Amz-Date and credential scope date differ");
        String exp = required(q, "X-Amz-Expires");
        if (!exp.matches("\\d{1,6}") || Long.parseLong(exp) < 1 || Long.parseLong(exp) > MAX_EXPIRES_SECONDS)
            throw new Refusal("X-Amz-Expires " + shown(exp) + " is not 1.." + MAX_EXPIRES_SECONDS);
        long now = Math.floorDiv(nowMs, 1000);
        if (signedAt > now + skewSeconds)
            throw new Refusal("token of " + akid + " signed " + (signedAt - now) + " s in the future");
        long expiredFor = now - (signedAt + Long.parseLong(exp));
        if (expiredFor > skewSeconds)
            throw new Refusal("token of " + akid + " expired " + expiredFor + " s ago");
        return signedAt;
    }

    private static void checkSessionToken(String got, Key key, String akid) throws Refusal {
        if (key.sessionToken() == null && got != null)
            throw new Refusal("access key id " + akid + " has no session token but the token carries one");
        if (key.sessionToken() != null && got == null)
            throw new Refusal("access key id " + akid + " requires a session token (X-Amz-Security-Token)");
        if (got != null && !MessageDigest.isEqual(bytes(got), bytes(key.sessionToken())))
            throw new Refusal("session token of " + akid + " does not match");
    }

    private static void checkSignature(Map<String, String> q, String host, String date, String secret,
                                       String akid) throws Refusal {
        String sig = required(q, "X-Amz-Signature");
        String scope = date + "/" + q.get("X-Amz-Credential").split("/")[2] + "/" + SERVICE + "/aws4_request";
        String stringToSign = ALGORITHM + "\n" + q.get("X-Amz-Date") + "\n" + scope + "\n"
            + hex(sha256(bytes(canonicalRequest(q, host))));
        byte[] k = hmac(bytes("AWS4" + secret), date);
        for (String part : scope.substring(9).split("/")) k = hmac(k, part);
        String want = hex(hmac(k, stringToSign));
        if (!MessageDigest.isEqual(bytes(want), bytes(sig)))
            throw new Refusal("signature of " + akid + " does not match (wrong secret or altered URL)");
    }

    static String canonicalRequest(Map<String, String> q, String host) {
        TreeMap<String, String> encoded = new TreeMap<>();
        for (Map.Entry<String, String> e : q.entrySet()) {
            if (e.getKey().equals("X-Amz-Signature") || e.getKey().equals("User-Agent")) continue;
            encoded.put(awsEncode(e.getKey()), awsEncode(e.getValue()));
        }
        StringBuilder query = new StringBuilder();
        for (Map.Entry<String, String> e : encoded.entrySet()) {
            if (query.length() > 0) query.append('&');
            query.append(e.getKey()).append('=').append(e.getValue());
        }
        return "GET\n/\n" + query + "\nhost:" + host + "\n\nhost\n" + EMPTY_SHA256;
    }

    /** RFC 3986 encoding as SigV4 wants it: unreserved characters kept, the rest %XX. */
    static String awsEncode(String s) {
        StringBuilder out = new StringBuilder();
        for (byte b : bytes(s)) {
            char c = (char) (b & 0xff);
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                || c == '-' || c == '_' || c == '.' || c == '~') out.append(c);
            else out.append('%').append(String.format("%02X", b & 0xff));
        }
        return out.toString();
    }

    // ---- crypto helpers --------------------------------------------------------------------

    static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] hmac(byte[] key, String data) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(bytes(data));
        } catch (java.security.GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    static String hex(byte[] b) {
        StringBuilder out = new StringBuilder(b.length * 2);
        for (byte x : b) out.append(String.format("%02x", x & 0xff));
        return out.toString();
    }

    @Override
    public void close() {}
}
