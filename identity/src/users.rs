//! The user directory of local mode: accounts, roles and argon2id password hashes in SQLite.
//! (With Cognito, accounts live in the user pool; only [`crate::verify`] is used.)

use crate::{IdentityError, Principal, Role};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use p360_events::{PatientId, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A user account (never carries the password hash out of this module).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    pub patient_id: Option<PatientId>,
    /// Disabled accounts cannot log in and their tokens are refused.
    pub active: bool,
}

impl User {
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.id.clone(),
            role: self.role,
            patient_id: self.patient_id.clone(),
        }
    }
}

/// New account details.
#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub role: Role,
    /// For patients: their record id (a fresh one is made if `None`).
    pub patient_id: Option<PatientId>,
}

/// A provider's identity as a clinician.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProviderProfile {
    /// National Provider Identifier (10 digits, Luhn check digit over the `80840` prefix).
    pub npi: String,
    pub organization: String,
}

/// Checks an NPI: ten digits whose last is the Luhn check digit of `80840` + the first nine
/// (the CMS NPI check-digit rule).
pub fn check_npi(npi: &str) -> Result<(), IdentityError> {
    let bad = || IdentityError::Invalid("npi: ten digits with a valid check digit".into());
    if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let digits: Vec<u32> = format!("80840{}", &npi[..9])
        .bytes()
        .map(|b| u32::from(b - b'0'))
        .collect();
    // Luhn: double every second digit from the right of the payload.
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    let check = (10 - sum % 10) % 10;
    if u32::from(npi.as_bytes()[9] - b'0') == check {
        Ok(())
    } else {
        Err(bad())
    }
}

#[derive(Clone)]
pub struct Directory {
    conn: Arc<Mutex<Connection>>,
    /// A hash of a random password, verified against when the user does not exist, so a
    /// login for an unknown name costs as long as one with a wrong password.
    decoy_hash: Arc<String>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Directory")
    }
}

fn db(e: rusqlite::Error) -> IdentityError {
    IdentityError::Unavailable(format!("user directory: {e}"))
}

fn hash(password: &str) -> Result<String, IdentityError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| IdentityError::Unavailable(format!("hashing: {e}")))
}

fn check_username(name: &str) -> Result<(), IdentityError> {
    let ok = (3..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(IdentityError::Invalid(
            "username: 3 to 64 characters of letters, digits, '.', '_', '-', '@'".into(),
        ))
    }
}

impl Directory {
    pub fn open(path: &Path) -> Result<Self, IdentityError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                IdentityError::Unavailable(format!("creating {}: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS users (
                id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
                patient_id TEXT, password_hash TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1,
                created_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS provider_profiles (
                user_id TEXT PRIMARY KEY REFERENCES users (id), npi TEXT NOT NULL,
                organization TEXT NOT NULL);",
        )
        .map_err(db)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            decoy_hash: Arc::new(hash(&uuid::Uuid::new_v4().to_string())?),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent: keep going.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates an account. Blocking (argon2 is deliberately slow): call from a blocking context.
    pub fn add(&self, new: NewUser<'_>) -> Result<User, IdentityError> {
        check_username(new.username)?;
        if new.password.chars().count() < 8 {
            return Err(IdentityError::Invalid(
                "password: at least 8 characters".into(),
            ));
        }
        let patient_id = match new.role {
            Role::Patient => Some(new.patient_id.unwrap_or_else(PatientId::random)),
            _ if new.patient_id.is_some() => {
                return Err(IdentityError::Invalid(
                    "only patient accounts own a patient record".into(),
                ));
            }
            _ => None,
        };
        let user = User {
            id: UserId::random(),
            username: new.username.to_owned(),
            role: new.role,
            patient_id,
            active: true,
        };
        let hash = hash(new.password)?;
        let inserted = self.lock().execute(
            "INSERT INTO users (id, username, role, patient_id, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                user.id.as_str(),
                user.username,
                user.role.as_str(),
                user.patient_id.as_ref().map(PatientId::as_str),
                hash,
                chrono::Utc::now().to_rfc3339()
            ],
        );
        match inserted {
            Ok(_) => Ok(user),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(IdentityError::Conflict("username already taken".into()))
            }
            Err(e) => Err(db(e)),
        }
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(User, String)> {
        let role: String = r.get(2)?;
        let patient: Option<String> = r.get(3)?;
        Ok((
            User {
                id: UserId::parse(&r.get::<_, String>(0)?)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                username: r.get(1)?,
                role: crate::parse_role(&role)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                patient_id: patient
                    .map(|p| PatientId::parse(&p))
                    .transpose()
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                active: r.get(5)?,
            },
            r.get(4)?,
        ))
    }

    const COLUMNS: &'static str = "id, username, role, patient_id, password_hash, active";

    /// Checks a username and password. Blocking (argon2).
    pub fn authenticate(&self, username: &str, password: &str) -> Result<User, IdentityError> {
        let found = self
            .lock()
            .query_row(
                &format!("SELECT {} FROM users WHERE username = ?1", Self::COLUMNS),
                [username],
                Self::row,
            )
            .optional()
            .map_err(db)?;
        let (user, stored) = match found {
            Some((u, h)) => (Some(u), h),
            None => (None, self.decoy_hash.to_string()),
        };
        let parsed = PasswordHash::new(&stored)
            .map_err(|_| IdentityError::Unavailable("stored password hash is unreadable".into()))?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        match user {
            Some(u) if ok && u.active => Ok(u),
            _ => Err(IdentityError::InvalidCredentials),
        }
    }

    pub fn get(&self, id: &UserId) -> Result<Option<User>, IdentityError> {
        self.lock()
            .query_row(
                &format!("SELECT {} FROM users WHERE id = ?1", Self::COLUMNS),
                [id.as_str()],
                Self::row,
            )
            .optional()
            .map(|o| o.map(|(u, _)| u))
            .map_err(db)
    }

    pub fn by_username(&self, username: &str) -> Result<Option<User>, IdentityError> {
        self.lock()
            .query_row(
                &format!("SELECT {} FROM users WHERE username = ?1", Self::COLUMNS),
                [username],
                Self::row,
            )
            .optional()
            .map(|o| o.map(|(u, _)| u))
            .map_err(db)
    }

    pub fn list(&self) -> Result<Vec<User>, IdentityError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM users ORDER BY username",
                Self::COLUMNS
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map([], Self::row)
            .map_err(db)?
            .map(|r| r.map(|(u, _)| u))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db)?;
        Ok(rows)
    }

    /// Records a provider's NPI and organization (shown to patients with their grants).
    pub fn set_provider_profile(
        &self,
        id: &UserId,
        profile: &ProviderProfile,
    ) -> Result<(), IdentityError> {
        check_npi(&profile.npi)?;
        let org = profile.organization.trim();
        if org.is_empty() || org.chars().count() > 200 {
            return Err(IdentityError::Invalid(
                "organization: 1 to 200 characters".into(),
            ));
        }
        let conn = self.lock();
        let role: Option<String> = conn
            .query_row("SELECT role FROM users WHERE id = ?1", [id.as_str()], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)?;
        match role.as_deref() {
            Some("provider") => {}
            Some(_) => {
                return Err(IdentityError::Invalid(
                    "only provider accounts have an NPI".into(),
                ));
            }
            None => return Err(IdentityError::Invalid("no such account".into())),
        }
        conn.execute(
            "INSERT INTO provider_profiles (user_id, npi, organization) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id) DO UPDATE SET npi = ?2, organization = ?3",
            rusqlite::params![id.as_str(), profile.npi, org],
        )
        .map_err(db)?;
        Ok(())
    }

    pub fn provider_profile(&self, id: &UserId) -> Result<Option<ProviderProfile>, IdentityError> {
        self.lock()
            .query_row(
                "SELECT npi, organization FROM provider_profiles WHERE user_id = ?1",
                [id.as_str()],
                |r| {
                    Ok(ProviderProfile {
                        npi: r.get(0)?,
                        organization: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(db)
    }

    /// Disables an account: its tokens stop working on the next request.
    pub fn disable(&self, id: &UserId) -> Result<bool, IdentityError> {
        self.lock()
            .execute("UPDATE users SET active = 0 WHERE id = ?1", [id.as_str()])
            .map(|n| n > 0)
            .map_err(db)
    }

    /// Deletes an account and its provider profile: its tokens stop working on the next
    /// request, and its username can be given to someone else. Its user id is never reused
    /// (ids are random), so ledger entries keep naming who it was.
    pub fn delete(&self, id: &UserId) -> Result<bool, IdentityError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        tx.execute(
            "DELETE FROM provider_profiles WHERE user_id = ?1",
            [id.as_str()],
        )
        .map_err(db)?;
        let n = tx
            .execute("DELETE FROM users WHERE id = ?1", [id.as_str()])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_check_digits() {
        // CMS's worked example: 123456789 → check digit 3.
        assert!(check_npi("1234567893").is_ok());
        assert!(check_npi("1234567890").is_err());
        assert!(check_npi("123456789").is_err());
        assert!(check_npi("12345678a3").is_err());
    }

    #[test]
    fn add_authenticate_disable() {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::open(&dir.path().join("id.db")).unwrap();
        let u = d
            .add(NewUser {
                username: "jane",
                password: "correct horse",
                role: Role::Patient,
                patient_id: None,
            })
            .unwrap();
        assert!(u.patient_id.is_some(), "patients get a record id");
        assert_eq!(d.authenticate("jane", "correct horse").unwrap(), u);
        assert!(matches!(
            d.authenticate("jane", "wrong password"),
            Err(IdentityError::InvalidCredentials)
        ));
        assert!(matches!(
            d.authenticate("nobody", "correct horse"),
            Err(IdentityError::InvalidCredentials)
        ));
        let dup = d.add(NewUser {
            username: "jane",
            password: "another one",
            role: Role::Admin,
            patient_id: None,
        });
        assert!(matches!(dup, Err(IdentityError::Conflict(_))));
        assert!(d.disable(&u.id).unwrap());
        assert!(!d.get(&u.id).unwrap().unwrap().active);
        assert!(d.authenticate("jane", "correct horse").is_err());
    }

    #[test]
    fn rejects_weak_or_odd_input() {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::open(&dir.path().join("id.db")).unwrap();
        let short = d.add(NewUser {
            username: "bob",
            password: "short",
            role: Role::Provider,
            patient_id: None,
        });
        assert!(short.unwrap_err().to_string().contains("at least 8"));
        let odd = d.add(NewUser {
            username: "bob smith<script>",
            password: "long enough",
            role: Role::Provider,
            patient_id: None,
        });
        assert!(odd.unwrap_err().to_string().contains("username"));
    }
}
