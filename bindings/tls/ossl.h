/*
** ossl.h -- OpenSSL, loaded when first needed (ossl.c).
**
** corio does not link libssl and libcrypto: loading them costs every
** program about half of corio's start-up (some 4,000 symbol relocations
** and libcrypto's constructors) while most scripts never use TLS.  The
** files that call OpenSSL (tls/, http/wsconn.c, http/wshand.c) include
** this header after OpenSSL's own; it turns each function they use into a
** call through a table that tls__ossl_load() fills with dlsym() from
** libssl.so.3 (and the libcrypto it brings), once per process.  Every
** entry point into that code (luaopen_corio__tls, luaopen_corio__wslay)
** loads it first.  The prototypes are OpenSSL's own (__typeof__), so a
** mismatch cannot compile.
**
** A new OpenSSL function needs its name in OSSL_SSL_FUNCS or
** OSSL_CRYPTO_FUNCS and a #define below (a missing one is a link error:
** the binary has no OpenSSL to resolve it against).
**
** CORIO_OSSL_LINKED (the fuzz targets, which link libcrypto) leaves the
** names alone.
*/
#ifndef CORIO_OSSL_H
#define CORIO_OSSL_H

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#ifndef CORIO_OSSL_LINKED

/* Functions of libssl. */
#define OSSL_SSL_FUNCS(X) \
  X(SSL_CIPHER_get_name) \
  X(SSL_CTX_check_private_key) \
  X(SSL_CTX_ctrl) \
  X(SSL_CTX_free) \
  X(SSL_CTX_get_cert_store) \
  X(SSL_CTX_get_ex_data) \
  X(SSL_CTX_get_verify_mode) \
  X(SSL_CTX_load_verify_locations) \
  X(SSL_CTX_new) \
  X(SSL_CTX_sess_set_new_cb) \
  X(SSL_CTX_set_alpn_protos) \
  X(SSL_CTX_set_alpn_select_cb) \
  X(SSL_CTX_set_cipher_list) \
  X(SSL_CTX_set_ciphersuites) \
  X(SSL_CTX_set_client_hello_cb) \
  X(SSL_CTX_set_default_verify_paths) \
  X(SSL_CTX_set_ex_data) \
  X(SSL_CTX_set_info_callback) \
  X(SSL_CTX_set_keylog_callback) \
  X(SSL_CTX_set_num_tickets) \
  X(SSL_CTX_set_options) \
  X(SSL_CTX_set_session_id_context) \
  X(SSL_CTX_set_verify) \
  X(SSL_CTX_use_PrivateKey) \
  X(SSL_CTX_use_certificate) \
  X(SSL_SESSION_free) \
  X(SSL_SESSION_is_resumable) \
  X(SSL_alert_desc_string_long) \
  X(SSL_client_hello_get0_ext) \
  X(SSL_ctrl) \
  X(SSL_do_handshake) \
  X(SSL_free) \
  X(SSL_get0_alpn_selected) \
  X(SSL_get0_param) \
  X(SSL_get0_peer_certificate) \
  X(SSL_get_SSL_CTX) \
  X(SSL_get_current_cipher) \
  X(SSL_get_error) \
  X(SSL_get_ex_data) \
  X(SSL_get_servername) \
  X(SSL_get_verify_mode) \
  X(SSL_get_verify_result) \
  X(SSL_get_version) \
  X(SSL_is_init_finished) \
  X(SSL_is_server) \
  X(SSL_new) \
  X(SSL_read_ex) \
  X(SSL_select_next_proto) \
  X(SSL_session_reused) \
  X(SSL_set1_host) \
  X(SSL_set_SSL_CTX) \
  X(SSL_set_accept_state) \
  X(SSL_set_bio) \
  X(SSL_set_connect_state) \
  X(SSL_set_ex_data) \
  X(SSL_set_hostflags) \
  X(SSL_set_session) \
  X(SSL_shutdown) \
  X(SSL_write_ex) \
  X(TLS_client_method) \
  X(TLS_server_method)

/* Functions of libcrypto (found through libssl's dependencies). */
#define OSSL_CRYPTO_FUNCS(X) \
  X(ASN1_STRING_get0_data) \
  X(ASN1_STRING_length) \
  X(ASN1_TIME_to_tm) \
  X(BIO_ctrl) \
  X(BIO_free) \
  X(BIO_new) \
  X(BIO_new_mem_buf) \
  X(BIO_s_mem) \
  X(BIO_write) \
  X(CRYPTO_get_ex_new_index) \
  X(ERR_clear_error) \
  X(ERR_peek_last_error) \
  X(ERR_reason_error_string) \
  X(EVP_DecodeBlock) \
  X(EVP_DigestFinal_ex) \
  X(EVP_DigestInit_ex) \
  X(EVP_DigestUpdate) \
  X(EVP_EncodeBlock) \
  X(EVP_MD_CTX_free) \
  X(EVP_MD_CTX_new) \
  X(EVP_MD_fetch) \
  X(EVP_PKEY_free) \
  X(EVP_sha1) \
  X(EVP_sha256) \
  X(GENERAL_NAMES_free) \
  X(OPENSSL_sk_num) \
  X(OPENSSL_sk_value) \
  X(OpenSSL_version) \
  X(PEM_read_bio_PrivateKey) \
  X(PEM_read_bio_X509) \
  X(RAND_bytes) \
  X(X509_NAME_print_ex) \
  X(X509_STORE_add_cert) \
  X(X509_VERIFY_PARAM_set1_ip_asc) \
  X(X509_digest) \
  X(X509_free) \
  X(X509_get0_notAfter) \
  X(X509_get0_notBefore) \
  X(X509_get_ext_d2i) \
  X(X509_get_issuer_name) \
  X(X509_get_subject_name) \
  X(X509_verify_cert_error_string)

typedef struct tls__ossl_api {
#define X(f) __typeof__(f) *f;
  OSSL_SSL_FUNCS(X)
  OSSL_CRYPTO_FUNCS(X)
#undef X
} tls__ossl_api;

/* Filled once by tls__ossl_load(); read-only afterwards. */
extern tls__ossl_api tls__ossl;

/* ossl.c fills the table by these names: it sees them unrenamed. */
#ifndef CORIO_OSSL_LOADER
#define ASN1_STRING_get0_data (tls__ossl.ASN1_STRING_get0_data)
#define ASN1_STRING_length (tls__ossl.ASN1_STRING_length)
#define ASN1_TIME_to_tm (tls__ossl.ASN1_TIME_to_tm)
#define BIO_ctrl (tls__ossl.BIO_ctrl)
#define BIO_free (tls__ossl.BIO_free)
#define BIO_new (tls__ossl.BIO_new)
#define BIO_new_mem_buf (tls__ossl.BIO_new_mem_buf)
#define BIO_s_mem (tls__ossl.BIO_s_mem)
#define BIO_write (tls__ossl.BIO_write)
#define CRYPTO_get_ex_new_index (tls__ossl.CRYPTO_get_ex_new_index)
#define ERR_clear_error (tls__ossl.ERR_clear_error)
#define ERR_peek_last_error (tls__ossl.ERR_peek_last_error)
#define ERR_reason_error_string (tls__ossl.ERR_reason_error_string)
#define EVP_DecodeBlock (tls__ossl.EVP_DecodeBlock)
#define EVP_DigestFinal_ex (tls__ossl.EVP_DigestFinal_ex)
#define EVP_DigestInit_ex (tls__ossl.EVP_DigestInit_ex)
#define EVP_DigestUpdate (tls__ossl.EVP_DigestUpdate)
#define EVP_EncodeBlock (tls__ossl.EVP_EncodeBlock)
#define EVP_MD_CTX_free (tls__ossl.EVP_MD_CTX_free)
#define EVP_MD_CTX_new (tls__ossl.EVP_MD_CTX_new)
#define EVP_MD_fetch (tls__ossl.EVP_MD_fetch)
#define EVP_PKEY_free (tls__ossl.EVP_PKEY_free)
#define EVP_sha1 (tls__ossl.EVP_sha1)
#define EVP_sha256 (tls__ossl.EVP_sha256)
#define GENERAL_NAMES_free (tls__ossl.GENERAL_NAMES_free)
#define OPENSSL_sk_num (tls__ossl.OPENSSL_sk_num)
#define OPENSSL_sk_value (tls__ossl.OPENSSL_sk_value)
#define OpenSSL_version (tls__ossl.OpenSSL_version)
#define PEM_read_bio_PrivateKey (tls__ossl.PEM_read_bio_PrivateKey)
#define PEM_read_bio_X509 (tls__ossl.PEM_read_bio_X509)
#define RAND_bytes (tls__ossl.RAND_bytes)
#define SSL_CIPHER_get_name (tls__ossl.SSL_CIPHER_get_name)
#define SSL_CTX_check_private_key (tls__ossl.SSL_CTX_check_private_key)
#define SSL_CTX_ctrl (tls__ossl.SSL_CTX_ctrl)
#define SSL_CTX_free (tls__ossl.SSL_CTX_free)
#define SSL_CTX_get_cert_store (tls__ossl.SSL_CTX_get_cert_store)
#define SSL_CTX_get_ex_data (tls__ossl.SSL_CTX_get_ex_data)
#define SSL_CTX_get_verify_mode (tls__ossl.SSL_CTX_get_verify_mode)
#define SSL_CTX_load_verify_locations (tls__ossl.SSL_CTX_load_verify_locations)
#define SSL_CTX_new (tls__ossl.SSL_CTX_new)
#define SSL_CTX_sess_set_new_cb (tls__ossl.SSL_CTX_sess_set_new_cb)
#define SSL_CTX_set_alpn_protos (tls__ossl.SSL_CTX_set_alpn_protos)
#define SSL_CTX_set_alpn_select_cb (tls__ossl.SSL_CTX_set_alpn_select_cb)
#define SSL_CTX_set_cipher_list (tls__ossl.SSL_CTX_set_cipher_list)
#define SSL_CTX_set_ciphersuites (tls__ossl.SSL_CTX_set_ciphersuites)
#define SSL_CTX_set_client_hello_cb (tls__ossl.SSL_CTX_set_client_hello_cb)
#define SSL_CTX_set_default_verify_paths (tls__ossl.SSL_CTX_set_default_verify_paths)
#define SSL_CTX_set_ex_data (tls__ossl.SSL_CTX_set_ex_data)
#define SSL_CTX_set_info_callback (tls__ossl.SSL_CTX_set_info_callback)
#define SSL_CTX_set_keylog_callback (tls__ossl.SSL_CTX_set_keylog_callback)
#define SSL_CTX_set_num_tickets (tls__ossl.SSL_CTX_set_num_tickets)
#define SSL_CTX_set_options (tls__ossl.SSL_CTX_set_options)
#define SSL_CTX_set_session_id_context (tls__ossl.SSL_CTX_set_session_id_context)
#define SSL_CTX_set_verify (tls__ossl.SSL_CTX_set_verify)
#define SSL_CTX_use_PrivateKey (tls__ossl.SSL_CTX_use_PrivateKey)
#define SSL_CTX_use_certificate (tls__ossl.SSL_CTX_use_certificate)
#define SSL_SESSION_free (tls__ossl.SSL_SESSION_free)
#define SSL_SESSION_is_resumable (tls__ossl.SSL_SESSION_is_resumable)
#define SSL_alert_desc_string_long (tls__ossl.SSL_alert_desc_string_long)
#define SSL_client_hello_get0_ext (tls__ossl.SSL_client_hello_get0_ext)
#define SSL_ctrl (tls__ossl.SSL_ctrl)
#define SSL_do_handshake (tls__ossl.SSL_do_handshake)
#define SSL_free (tls__ossl.SSL_free)
#define SSL_get0_alpn_selected (tls__ossl.SSL_get0_alpn_selected)
#define SSL_get0_param (tls__ossl.SSL_get0_param)
#define SSL_get0_peer_certificate (tls__ossl.SSL_get0_peer_certificate)
#define SSL_get_SSL_CTX (tls__ossl.SSL_get_SSL_CTX)
#define SSL_get_current_cipher (tls__ossl.SSL_get_current_cipher)
#define SSL_get_error (tls__ossl.SSL_get_error)
#define SSL_get_ex_data (tls__ossl.SSL_get_ex_data)
#define SSL_get_servername (tls__ossl.SSL_get_servername)
#define SSL_get_verify_mode (tls__ossl.SSL_get_verify_mode)
#define SSL_get_verify_result (tls__ossl.SSL_get_verify_result)
#define SSL_get_version (tls__ossl.SSL_get_version)
#define SSL_is_init_finished (tls__ossl.SSL_is_init_finished)
#define SSL_is_server (tls__ossl.SSL_is_server)
#define SSL_new (tls__ossl.SSL_new)
#define SSL_read_ex (tls__ossl.SSL_read_ex)
#define SSL_select_next_proto (tls__ossl.SSL_select_next_proto)
#define SSL_session_reused (tls__ossl.SSL_session_reused)
#define SSL_set1_host (tls__ossl.SSL_set1_host)
#define SSL_set_SSL_CTX (tls__ossl.SSL_set_SSL_CTX)
#define SSL_set_accept_state (tls__ossl.SSL_set_accept_state)
#define SSL_set_bio (tls__ossl.SSL_set_bio)
#define SSL_set_connect_state (tls__ossl.SSL_set_connect_state)
#define SSL_set_ex_data (tls__ossl.SSL_set_ex_data)
#define SSL_set_hostflags (tls__ossl.SSL_set_hostflags)
#define SSL_set_session (tls__ossl.SSL_set_session)
#define SSL_shutdown (tls__ossl.SSL_shutdown)
#define SSL_write_ex (tls__ossl.SSL_write_ex)
#define TLS_client_method (tls__ossl.TLS_client_method)
#define TLS_server_method (tls__ossl.TLS_server_method)
#define X509_NAME_print_ex (tls__ossl.X509_NAME_print_ex)
#define X509_STORE_add_cert (tls__ossl.X509_STORE_add_cert)
#define X509_VERIFY_PARAM_set1_ip_asc (tls__ossl.X509_VERIFY_PARAM_set1_ip_asc)
#define X509_digest (tls__ossl.X509_digest)
#define X509_free (tls__ossl.X509_free)
#define X509_get0_notAfter (tls__ossl.X509_get0_notAfter)
#define X509_get0_notBefore (tls__ossl.X509_get0_notBefore)
#define X509_get_ext_d2i (tls__ossl.X509_get_ext_d2i)
#define X509_get_issuer_name (tls__ossl.X509_get_issuer_name)
#define X509_get_subject_name (tls__ossl.X509_get_subject_name)
#define X509_verify_cert_error_string (tls__ossl.X509_verify_cert_error_string)
#endif /* CORIO_OSSL_LOADER */

#endif /* CORIO_OSSL_LINKED */

struct lua_State;

/* Loads libssl.so.3 and fills tls__ossl, once per process (any thread);
** raises a corio.Error (code "TLS") naming what is missing if it cannot.
** With CORIO_OSSL_LINKED it does nothing. */
void tls__ossl_load(struct lua_State *L);

#endif
