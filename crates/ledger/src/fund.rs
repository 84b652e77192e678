//! The four funds, member categories, and the chart of accounts (see `docs/ACCOUNTS.md`).

use std::fmt;

use crate::ids::{AgencyId, MemberId};

/// The four separately accounted funds of Art. 30. Money never crosses between them.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum Fund {
    Casualty,
    Pension,
    Medical,
    Spouse,
}

impl Fund {
    pub const ALL: [Fund; 4] = [Fund::Casualty, Fund::Pension, Fund::Medical, Fund::Spouse];

    pub fn name(self) -> &'static str {
        match self {
            Fund::Casualty => "casualty",
            Fund::Pension => "pension",
            Fund::Medical => "medical",
            Fund::Spouse => "spouse",
        }
    }

    pub fn parse(text: &str) -> Result<Fund, String> {
        Fund::ALL
            .into_iter()
            .find(|f| f.name() == text)
            .ok_or_else(|| "expected one of casualty, pension, medical, spouse".to_string())
    }
}

/// In JSON a fund is its name (`"pension"`).
impl serde::Serialize for Fund {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl fmt::Display for Fund {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Member categories of the contract. `Spouse` is an unemployed accompanying spouse.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum Category {
    Officer,
    CivilianCadre,
    Sergeant,
    Conscript,
    Cadet,
    Spouse,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::Officer,
        Category::CivilianCadre,
        Category::Sergeant,
        Category::Conscript,
        Category::Cadet,
        Category::Spouse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Officer => "officer",
            Category::CivilianCadre => "civilian_cadre",
            Category::Sergeant => "sergeant",
            Category::Conscript => "conscript",
            Category::Cadet => "cadet",
            Category::Spouse => "spouse",
        }
    }

    pub fn parse(text: &str) -> Result<Category, String> {
        Category::ALL.into_iter().find(|c| c.name() == text).ok_or_else(|| {
            "expected one of officer, civilian_cadre, sergeant, conscript, cadet, spouse"
                .to_string()
        })
    }

    /// Art. 20 ¶1: officers, civilian cadres and sergeants pay the medical premium.
    pub fn pays_medical_premium(self) -> bool {
        matches!(self, Category::Officer | Category::CivilianCadre | Category::Sergeant)
    }

    pub fn is_serviceman(self) -> bool {
        self != Category::Spouse
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The two parts of the spouse fund (Art. 25): pension premiums and medical premiums.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum SpousePart {
    Pension,
    Medical,
}

impl SpousePart {
    pub fn name(self) -> &'static str {
        match self {
            SpousePart::Pension => "pension",
            SpousePart::Medical => "medical",
        }
    }

    pub fn parse(text: &str) -> Result<SpousePart, String> {
        match text {
            "pension" => Ok(SpousePart::Pension),
            "medical" => Ok(SpousePart::Medical),
            _ => Err("expected pension or medical".to_string()),
        }
    }
}

/// What part of a member's individual account money belongs to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum Holding {
    /// Premiums the member paid (withheld by the unit, Art. 32).
    Personal,
    /// State subsidies credited to the member (match, standard, discharge).
    State,
    /// Interest credited to the member (Art. 31).
    Interest,
    /// Insurance brought in from a civilian agency (Art. 15, 22, 26).
    TransferredIn,
}

impl Holding {
    pub const ALL: [Holding; 4] =
        [Holding::Personal, Holding::State, Holding::Interest, Holding::TransferredIn];

    pub fn name(self) -> &'static str {
        match self {
            Holding::Personal => "personal",
            Holding::State => "state",
            Holding::Interest => "interest",
            Holding::TransferredIn => "transferred_in",
        }
    }
}

/// Where a fund's money came from (normal credit balance).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum Source {
    /// Premiums withheld from members by their units.
    Personal,
    /// Central-government money: subsidies and appropriations (Art. 31).
    Central,
    /// Interest income.
    Interest,
    /// Money returned after fraud or diversion (Art. 46, 47).
    Recovery,
    /// Insurance brought in from a civilian agency (Art. 15, 22, 26).
    TransferIn,
}

/// Where a fund's money went (normal debit balance).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum Use {
    /// Casualty benefits paid (Art. 7, 8).
    Benefit,
    /// Transfers to civilian agencies, once the agency confirmed receipt.
    Transfer,
}

/// The kind of an account inside one fund.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub enum AccountKind {
    /// A member's individual account. `part` is set only in the spouse fund.
    Member {
        member: MemberId,
        part: Option<SpousePart>,
        holding: Holding,
    },
    /// Money held by the fund and not attributed to a member (appropriations, recoveries).
    Pool,
    /// Money due to a civilian agency after a transfer-out, until the agency confirms.
    AgencyPayable {
        agency: AgencyId,
    },
    Source(Source),
    Use(Use),
    /// What a unit withheld for a period and has not yet remitted (Art. 32; `admin`).
    UnitReceivable {
        unit: crate::ids::UnitId,
        period: crate::time::Period,
    },
    /// The counterpart of the units' receivables: fund money not yet at its bank (`admin`).
    Unremitted,
}

/// An account: a fund and a kind. Its name is `fund:...`, colon-separated.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub struct Account {
    pub fund: Fund,
    pub kind: AccountKind,
}

impl Account {
    pub fn member(
        fund: Fund,
        member: &MemberId,
        part: Option<SpousePart>,
        holding: Holding,
    ) -> Self {
        Account { fund, kind: AccountKind::Member { member: member.clone(), part, holding } }
    }

    pub fn pool(fund: Fund) -> Self {
        Account { fund, kind: AccountKind::Pool }
    }

    pub fn source(fund: Fund, source: Source) -> Self {
        Account { fund, kind: AccountKind::Source(source) }
    }

    pub fn uses(fund: Fund, what: Use) -> Self {
        Account { fund, kind: AccountKind::Use(what) }
    }

    pub fn agency_payable(fund: Fund, agency: &AgencyId) -> Self {
        Account { fund, kind: AccountKind::AgencyPayable { agency: agency.clone() } }
    }

    /// The member an account belongs to, if it is an individual account.
    pub fn member_id(&self) -> Option<&MemberId> {
        match &self.kind {
            AccountKind::Member { member, .. } => Some(member),
            _ => None,
        }
    }
}

/// In JSON an account is its name, as `balance` prints it.
impl serde::Serialize for Account {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fund = self.fund.name();
        match &self.kind {
            AccountKind::Member { member, part: Some(part), holding } => {
                write!(f, "{fund}:member:{member}:{}:{}", part.name(), holding.name())
            }
            AccountKind::Member { member, part: None, holding } => {
                write!(f, "{fund}:member:{member}:{}", holding.name())
            }
            AccountKind::Pool => write!(f, "{fund}:pool"),
            AccountKind::AgencyPayable { agency } => write!(f, "{fund}:agency:{agency}:payable"),
            AccountKind::Source(s) => {
                let s = match s {
                    Source::Personal => "personal",
                    Source::Central => "central",
                    Source::Interest => "interest",
                    Source::Recovery => "recovery",
                    Source::TransferIn => "transfer_in",
                };
                write!(f, "{fund}:income:{s}")
            }
            AccountKind::Use(u) => {
                let u = match u {
                    Use::Benefit => "benefit",
                    Use::Transfer => "transfer",
                };
                write!(f, "{fund}:expense:{u}")
            }
            AccountKind::UnitReceivable { unit, period } => {
                write!(f, "{fund}:unit:{unit}:receivable:{period}")
            }
            AccountKind::Unremitted => write!(f, "{fund}:unremitted"),
        }
    }
}
