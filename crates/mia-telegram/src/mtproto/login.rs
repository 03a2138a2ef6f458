//! Signing in as a bot (token) or a user (phone, login code, 2FA password).
//!
//! Each call runs in its own task ([`MtprotoClient::call`]): grammers' sign-in code has
//! `unwrap`s and `panic!`s on answers it does not expect, and a panic there must end the sign-in,
//! not the host. A successful sign-in is written to the session file at once.

use std::fmt;
use std::sync::Arc;

use grammers_client::SignInError;
use grammers_client::client::{LoginToken, PasswordToken};
use grammers_client::peer::User;

use super::client::MtprotoClient;
use crate::bot_api::BotToken;
use crate::error::TelegramError;

/// The account a session is signed in as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Telegram's user id.
    pub id: i64,
    /// The `@username`, if it has one.
    pub username: Option<String>,
    /// Whether it is a bot.
    pub bot: bool,
}

impl Account {
    fn of(user: &User) -> Self {
        Self {
            id: user.id().bare_id().unwrap_or_default(),
            username: user.username().map(str::to_owned),
            bot: user.is_bot(),
        }
    }
}

/// A login code is on its way to the account's Telegram apps (or by SMS); pass this and the
/// code to [`MtprotoClient::sign_in_with_code`].
#[derive(Clone)]
pub struct CodeRequest(Arc<LoginToken>);

impl fmt::Debug for CodeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeRequest(****)")
    }
}

/// The account has a 2FA password; pass this and the password to
/// [`MtprotoClient::check_password`].
pub struct PasswordRequest {
    token: PasswordToken,
    wrong_before: bool,
}

impl PasswordRequest {
    /// The hint the account owner set for the password, if any.
    pub fn hint(&self) -> Option<&str> {
        self.token.hint()
    }

    /// Whether this request follows a wrong password.
    pub fn after_wrong_password(&self) -> bool {
        self.wrong_before
    }
}

impl fmt::Debug for PasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordRequest")
            .field("after_wrong_password", &self.wrong_before)
            .finish_non_exhaustive()
    }
}

/// Where a user sign-in stands.
#[derive(Debug)]
pub enum SignIn {
    /// Signed in.
    Done(Account),
    /// The account has 2FA: the password is needed (again, after a wrong one).
    PasswordNeeded(PasswordRequest),
}

impl MtprotoClient {
    /// Signs in as the bot with this token (from @BotFather).
    ///
    /// # Errors
    /// [`TelegramError::Mtproto`] when Telegram refuses the token or cannot be reached;
    /// [`TelegramError::ClientPanicked`] when the client library panicked.
    pub async fn sign_in_bot(&self, token: &BotToken) -> Result<Account, TelegramError> {
        let token = token.expose().to_owned();
        let hash = self.config().api_hash.expose().to_owned();
        let user = self
            .call("auth.importBotAuthorization", move |c| async move {
                c.bot_sign_in(&token, &hash).await
            })
            .await?
            .map_err(|e| self.error("auth.importBotAuthorization", &e))?;
        self.signed_in(&user)
    }

    /// Asks Telegram to send a login code to the account with this phone number
    /// (international format, `+43...`).
    ///
    /// # Errors
    /// [`TelegramError::Mtproto`] when Telegram refuses (an invalid number, flood control) or
    /// cannot be reached; [`TelegramError::ClientPanicked`] when the client library panicked.
    pub async fn request_login_code(&self, phone: &str) -> Result<CodeRequest, TelegramError> {
        let phone = phone.to_owned();
        let hash = self.config().api_hash.expose().to_owned();
        let token = self
            .call("auth.sendCode", move |c| async move {
                c.request_login_code(&phone, &hash).await
            })
            .await?
            .map_err(|e| self.error("auth.sendCode", &e))?;
        Ok(CodeRequest(Arc::new(token)))
    }

    /// Completes a user sign-in with the code Telegram sent.
    ///
    /// # Errors
    /// [`TelegramError::Login`] for a wrong or expired code, or a number without an account
    /// (sign up in an official app first); [`TelegramError::Mtproto`] when Telegram cannot be
    /// reached; [`TelegramError::ClientPanicked`] when the client library panicked.
    pub async fn sign_in_with_code(
        &self,
        request: &CodeRequest,
        code: &str,
    ) -> Result<SignIn, TelegramError> {
        let token = Arc::clone(&request.0);
        let code = code.trim().to_owned();
        let answer = self
            .call("auth.signIn", move |c| async move {
                Ok(c.sign_in(&token, &code).await)
            })
            .await?
            .map_err(|e| self.error("auth.signIn", &e))?;
        match answer {
            Ok(user) => Ok(SignIn::Done(self.signed_in(&user)?)),
            Err(SignInError::PasswordRequired(token)) => {
                Ok(SignIn::PasswordNeeded(PasswordRequest {
                    token,
                    wrong_before: false,
                }))
            }
            Err(e) => Err(self.sign_in_error("auth.signIn", e)),
        }
    }

    /// Completes a sign-in with the account's 2FA password. A wrong password answers
    /// [`SignIn::PasswordNeeded`] again.
    ///
    /// # Errors
    /// [`TelegramError::Mtproto`] when Telegram cannot be reached;
    /// [`TelegramError::ClientPanicked`] when the client library panicked.
    pub async fn check_password(
        &self,
        request: PasswordRequest,
        password: &str,
    ) -> Result<SignIn, TelegramError> {
        let password = password.as_bytes().to_vec();
        let token = request.token;
        let answer = self
            .call("auth.checkPassword", move |c| async move {
                Ok(c.check_password(token, password).await)
            })
            .await?
            .map_err(|e| self.error("auth.checkPassword", &e))?;
        match answer {
            Ok(user) => Ok(SignIn::Done(self.signed_in(&user)?)),
            Err(SignInError::InvalidPassword(token)) => {
                Ok(SignIn::PasswordNeeded(PasswordRequest {
                    token,
                    wrong_before: true,
                }))
            }
            Err(e) => Err(self.sign_in_error("auth.checkPassword", e)),
        }
    }

    /// The signed-in account.
    ///
    /// # Errors
    /// [`TelegramError::Login`] when the session is not signed in; [`TelegramError::Mtproto`]
    /// when Telegram cannot be reached.
    pub async fn me(&self) -> Result<Account, TelegramError> {
        let user = self
            .call("users.getUsers", |c| async move { c.get_me().await })
            .await?
            .map_err(|e| self.error("users.getUsers", &e))?;
        Ok(Account::of(&user))
    }

    fn signed_in(&self, user: &User) -> Result<Account, TelegramError> {
        self.set_authorized(true);
        // The authorization must survive a crash: without it the account would need a new
        // login (an expensive, flood-limited request) and leave a dangling session behind.
        self.session().save()?;
        let account = Account::of(user);
        tracing::info!(
            account = account.id,
            bot = account.bot,
            "mia.mtproto signed in"
        );
        Ok(account)
    }

    fn sign_in_error(&self, method: &'static str, error: SignInError) -> TelegramError {
        match error {
            SignInError::SignUpRequired => TelegramError::Login(
                "this phone number has no Telegram account; sign up in an official app first"
                    .into(),
            ),
            SignInError::InvalidCode => {
                TelegramError::Login("the login code is wrong or expired".into())
            }
            SignInError::PasswordRequired(_) | SignInError::InvalidPassword(_) => {
                TelegramError::Login("the 2FA password is needed".into())
            }
            SignInError::Other(e) => self.error(method, &e),
        }
    }
}
